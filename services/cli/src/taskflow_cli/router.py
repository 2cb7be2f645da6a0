"""The all-in-one path router: the three apps behind one port, split by the gateway's route
table (``taskflow_core.gateway``), like Loki's or Jaeger's all-in-one targets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any

import orjson
from taskflow_core.gateway import owner_of
from taskflow_core.openapi import build_spec
from taskflow_core.routing import Route

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Coroutine[Any, Any, None]]


class PathRouter:
    """Dispatches HTTP by path owner and fans lifespan events out to every app."""

    def __init__(
        self,
        apps: dict[str, ASGIApp],
        routes: list[Route],
        version: str,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        self.apps = apps
        self.on_started = on_started  # called once every app has started
        # /openapi.json shows the whole API, not only the default service's part.
        self.openapi = orjson.dumps(build_spec("TaskFlow API", version, routes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path = scope.get("path", "/")
        if scope["type"] == "http" and path == "/openapi.json":
            await _send_json(send, self.openapi)
            return
        await self.apps[owner_of(path)](scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        inboxes = {name: asyncio.Queue[Message]() for name in self.apps}
        outboxes = {name: asyncio.Queue[Message]() for name in self.apps}
        tasks: list[asyncio.Task[None]] = [
            asyncio.create_task(
                app(
                    {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                    inboxes[name].get,
                    outboxes[name].put,
                )
            )
            for name, app in self.apps.items()
        ]
        while True:
            message = await receive()
            phase = message["type"].split(".")[-1]  # startup | shutdown
            failed = None
            for name in self.apps:
                await inboxes[name].put(message)
                reply = await outboxes[name].get()
                if reply["type"].endswith("failed"):
                    failed = f"{name}: {reply.get('message', '')}"
            if failed:
                await send({"type": f"lifespan.{phase}.failed", "message": failed})
            else:
                await send({"type": f"lifespan.{phase}.complete"})
                if phase == "startup" and self.on_started is not None:
                    self.on_started()
            if phase == "shutdown" or failed:
                break
        for task in tasks:
            task.cancel()


async def _send_json(send: Send, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
