"""The one factory for the httpx client services use to call each other."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import structlog

from .logging import REQUEST_ID_HEADER

CredentialProvider = Callable[[str], Awaitable[str]]


async def _propagate_request_id(request: httpx.Request) -> None:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id


def create_http_client(
    *,
    timeout: float = 5.0,
    base_url: str = "",
    credentials: Callable[[httpx.Request], Awaitable[None]] | None = None,
    max_connections: int = 50,
) -> httpx.AsyncClient:
    """A pooled client: explicit timeouts, ``X-Request-Id`` propagated from the current request,
    and (when given) a hook that adds the caller's service credential."""
    hooks: list[Callable[[httpx.Request], Awaitable[None]]] = [_propagate_request_id]
    if credentials is not None:
        hooks.append(credentials)
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=20),
        event_hooks={"request": hooks},
    )
