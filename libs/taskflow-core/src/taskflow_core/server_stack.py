"""Which server stack (event loop, HTTP parser) this process really runs on, for the start-up log.

``taskflow serve`` chooses the stack explicitly, but the images start plain ``uvicorn`` (``--loop
auto --http auto`` unless ``UVICORN_LOOP`` / ``UVICORN_HTTP`` say otherwise), so the answer is
read from the running process rather than from a setting: the loop is the running loop's class,
and the HTTP implementation the uvicorn protocol module that was loaded (uvicorn imports only the
one it serves with, before the application's start-up runs).
"""

from __future__ import annotations

import asyncio
import sys

_BOUNDED_HTTPTOOLS = "taskflow_core.http_protocol"
_BOUNDED_HINT = "taskflow_core.http_protocol:HttpToolsProtocol"
_HTTP_IMPLEMENTATIONS = {
    "httptools": "uvicorn.protocols.http.httptools_impl",
    "h11": "uvicorn.protocols.http.h11_impl",
}


def running_loop() -> str:
    """``uvloop`` or ``asyncio`` (the top-level package of the running loop's class)."""
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def running_http() -> str:
    """``httptools`` or ``h11`` as uvicorn loaded it; ``unknown`` under another server (a test
    client, another ASGI server)."""
    loaded = [name for name, module in _HTTP_IMPLEMENTATIONS.items() if module in sys.modules]
    return "+".join(loaded) or "unknown"


def running_stack() -> dict[str, str]:
    stack = {"loop": running_loop(), "http": running_http()}
    if stack["http"] == "httptools" and _BOUNDED_HTTPTOOLS not in sys.modules:
        # uvicorn's own httptools protocol reads headers of any size (see http_protocol).
        stack["warning"] = f"no limit on request heads: start uvicorn with --http {_BOUNDED_HINT}"
    return stack
