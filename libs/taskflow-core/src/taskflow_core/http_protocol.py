"""uvicorn's httptools protocol with a bound on a request's head (request line + headers).

h11 refuses a head over its ``h11_max_incomplete_event_size``; httptools (llhttp) has no limit
at all, so a client could make a service hold an arbitrarily large header in memory. This
protocol answers **431** (the error document every service uses) and closes the connection once
a head passes :data:`MAX_HEAD_BYTES`, whether it arrives complete in one read or keeps trickling
in without an end.

Select it with ``uvicorn --http taskflow_core.http_protocol:HttpToolsProtocol`` (the images,
``taskflow serve`` and ``bench/`` do); only this module imports it, so loading it is what says
"httptools" in the ``server_stack`` start-up line.
"""

from __future__ import annotations

import httptools  # noqa: F401  (the parser the base class drives; declared by this package)
import orjson
import structlog
from uvicorn.protocols.http import httptools_impl

from .errors import error_body

MAX_HEAD_BYTES = 65536  # the limit `taskflow serve` gave h11, and nginx's 4 x 16k buffers
IMPORT_STRING = "taskflow_core.http_protocol:HttpToolsProtocol"

log = structlog.get_logger("taskflow.http")


class HeadTooLarge(Exception):
    """Raised from a parser callback: httptools stops parsing, uvicorn answers the error."""


class HttpToolsProtocol(httptools_impl.HttpToolsProtocol):
    _head_bytes = 0  # bytes of the current head: read while it was incomplete, or parsed
    _in_head = False
    _head_too_large = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            # The head is still incomplete after this read: bound what is buffered.
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._head_too_large = True
                self.send_400_response("")

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._head_too_large = True
            raise HeadTooLarge

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request it cannot parse: 431 when the head was too large."""
        if not self._head_too_large:
            super().send_400_response(msg)
            return
        message = f"request line and headers exceed {MAX_HEAD_BYTES} bytes"
        log.warning("request_head_too_large", client=self.client, limit=MAX_HEAD_BYTES)
        body = orjson.dumps(error_body(431, message))
        head = [b"HTTP/1.1 431 Request Header Fields Too Large\r\n"]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()
