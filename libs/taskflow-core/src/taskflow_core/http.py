"""The one factory for the httpx client services use to call each other."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import structlog

from .logging import REQUEST_ID_HEADER

log = structlog.get_logger(__name__)

CredentialProvider = Callable[[str], Awaitable[str]]


async def _propagate_request_id(request: httpx.Request) -> None:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id


# Methods a request of which can be sent again without doing anything twice.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Shorter than the keep-alive timeout of the services' uvicorn (5 s) and of nginx (75 s): the
# pool drops an idle connection before the server does, so reusing one rarely races its close.
KEEPALIVE_EXPIRY = 2.0


class RetryClosedConnection(httpx.AsyncBaseTransport):
    """Sends an idempotent request once more, on a new connection, when the pooled connection
    it went out on turns out to be closed by the server (ReadError, or "Server disconnected
    without sending a response"): a server closing an idle kept-alive connection at the moment
    a request arrives on it is no outage. Other methods fail as before (the caller decides)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self.inner.handle_async_request(request)
        except (httpx.ReadError, httpx.RemoteProtocolError) as exc:
            if request.method not in IDEMPOTENT_METHODS:
                raise
            log.info("http_retry_closed_connection", url=str(request.url), error=type(exc).__name__)
            return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def create_http_client(
    *,
    timeout: float = 5.0,
    base_url: str = "",
    credentials: Callable[[httpx.Request], Awaitable[None]] | None = None,
    max_connections: int = 50,
) -> httpx.AsyncClient:
    """A pooled client: explicit timeouts, ``X-Request-Id`` propagated from the current request,
    (when given) a hook that adds the caller's service credential, and an idempotent request
    retried once when its kept-alive connection was closed under it."""
    hooks: list[Callable[[httpx.Request], Awaitable[None]]] = [_propagate_request_id]
    if credentials is not None:
        hooks.append(credentials)
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
        transport=RetryClosedConnection(
            httpx.AsyncHTTPTransport(
                limits=httpx.Limits(
                    max_connections=max_connections,
                    max_keepalive_connections=20,
                    keepalive_expiry=KEEPALIVE_EXPIRY,
                )
            )
        ),
        event_hooks={"request": hooks},
    )
