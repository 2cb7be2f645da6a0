"""A real HTTP receiver started by a test: records every request (path, headers, body) and
answers what the test tells it to (a status, or nothing at all while "down").

Used as the stand-in notification service and as webhook endpoints."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    answered: int | None = None

    def json(self) -> Any:
        return json.loads(self.body)


SUCCESS = b'{"status":"SUCCESS"}'


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up (the sender timed out): nothing to report


class Receiver:
    """``with Receiver() as r:`` → ``r.url``; ``r.received`` lists what arrived (accepted or
    not). ``r.status`` is the answer (200); ``r.answer`` may compute it per request, as a status
    or (status, body); the body is otherwise Dapr's ``{"status":"SUCCESS"}``."""

    def __init__(self, port: int = 0) -> None:
        self.received: list[Received] = []
        self.status = 200
        self.answer: Callable[[Received], int | tuple[int, bytes]] | None = None
        self.hang = 0.0  # seconds to wait before answering (a hanging endpoint)
        self.extra_headers: dict[str, str] = {}  # added to every answer (a Location, say)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # As any production server does: the headers and the body go out at once, not the
            # body 40 ms later, when the client's delayed ACK of the headers lets Nagle send it.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                got = Received(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time()
                )
                with receiver._lock:
                    receiver.received.append(got)
                if receiver.hang:
                    time.sleep(receiver.hang)
                answer = receiver.answer(got) if receiver.answer else receiver.status
                status, payload = answer if isinstance(answer, tuple) else (answer, SUCCESS)
                got.answered = status
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for name, value in receiver.extra_headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (a hanging endpoint's caller timed out)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> Receiver:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                snapshot = list(self.received)
            if predicate(snapshot):
                return
            time.sleep(0.05)
        raise AssertionError(f"receiver: condition not met in {timeout}s; got {len(snapshot)}")
