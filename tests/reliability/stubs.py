"""Misbehaving network peers for fault tests: a JWKS endpoint that can go down, slow or
garbage, and an HTTP forwarder that can delay or refuse what it relays (the audit service)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import httpx

HOP_BY_HOP = {"content-length", "transfer-encoding", "connection"}

JwksMode = Literal["ok", "down", "slow", "garbage", "not-a-keyset", "reset"]


class _Server:
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@dataclass
class JwksStub(_Server):
    """Serves ``jwks()`` at ``/jwks`` or misbehaves as ``mode`` says; counts fetches."""

    jwks: Callable[[], dict[str, Any]]
    mode: JwksMode = "ok"
    slow_seconds: float = 30.0
    fetches: int = 0

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/jwks"

    def start(self) -> JwksStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                stub.fetches += 1
                mode = stub.mode
                if mode == "ok":
                    import json

                    self._send(200, json.dumps(stub.jwks()).encode(), "application/json")
                elif mode == "down":
                    self._send(503, b'{"error": "down"}', "application/json")
                elif mode == "slow":
                    time.sleep(stub.slow_seconds)
                    self._send(503, b"too late", "text/plain")
                elif mode == "garbage":
                    self._send(200, b"<html>\x00\xff not json", "application/json")
                elif mode == "not-a-keyset":
                    self._send(200, b'{"keys": [{"kty": "nope"}], "x": 1}', "application/json")
                elif mode == "reset":
                    self.close_connection = True
                    self.connection.close()

        self._serve(Handler)
        return self


@dataclass
class DelayingForwarder(_Server):
    """Forwards every request to ``target`` after ``delay`` seconds, or answers 503 when
    ``refuse`` is set; remembers how many requests it saw."""

    target: str
    delay: float = 0.0
    refuse: bool = False
    seen: int = 0
    _client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))

    def start(self) -> DelayingForwarder:
        fwd = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                fwd.seen += 1
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if fwd.refuse:
                    reply = b'{"error": "unavailable"}'
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                    return
                if fwd.delay:
                    time.sleep(fwd.delay)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in {"host", "content-length", "connection"}
                }
                try:
                    upstream = fwd._client.request(
                        self.command, fwd.target + self.path, content=body, headers=headers
                    )
                except httpx.HTTPError:
                    self.send_response(502)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                try:
                    self.send_response(upstream.status_code)
                    for name, value in upstream.headers.items():
                        if name.lower() not in HOP_BY_HOP:
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(upstream.content)))
                    self.end_headers()
                    self.wfile.write(upstream.content)
                except OSError:
                    pass  # the caller gave up (its timeout): the point of the exercise

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self._serve(Handler)
        return self

    def stop(self) -> None:
        super().stop()
        self._client.close()
