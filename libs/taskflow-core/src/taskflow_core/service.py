"""The shared shape of a TaskFlow service: one builder wires what every service has in common
(error shape, request ids and access log, CORS, body limit, health, docs, pool lifecycle)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import falcon
import falcon.asgi
import falcon.media
import orjson
import psycopg_pool
import structlog

from . import __version__
from .auth.authenticator import Authenticator
from .auth.middleware import AuthMiddleware
from .config import Settings
from .db import DB_UNAVAILABLE, install_outage_handler, open_pool, ping
from .errors import APIError, error_body, install_error_handlers
from .logging import RequestContextMiddleware
from .metrics import EventLoopLag, ServiceMetrics, install_metrics, outbox_backlog_from
from .openapi import API_INTRODUCTION, API_TITLE, build_spec, mount_docs, service_note
from .ratelimit import RateLimitMiddleware
from .routing import Operation, Route
from .server_stack import running_stack

log = structlog.get_logger("taskflow.service")

ReadinessCheck = Callable[[], Awaitable[dict[str, Any]]]


def dumps_json(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)


JSON_HANDLER = falcon.media.JSONHandler(dumps=dumps_json, loads=orjson.loads)


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413 before any resource reads them."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        length = req.content_length
        too_large = length is not None and length > self.max_bytes
        if too_large or req.scope.get(_BODY_TOO_LARGE):
            raise APIError(413, f"Request body exceeds {self.max_bytes} bytes")


_BODY_TOO_LARGE = "taskflow.body_too_large"


async def _buffer_unsized_body(
    scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]], max_bytes: int
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """A body without Content-Length (chunked) is read here, up to ``max_bytes``, so the limit
    holds for it too; over the limit the scope is flagged (BodyLimitMiddleware answers 413,
    through the normal middleware so the error keeps its request id and access line)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return _replay([message], receive)
        size += len(message.get("body", b""))
        if size > max_bytes:
            scope[_BODY_TOO_LARGE] = True
            return _replay([{"type": "http.request", "body": b"", "more_body": False}], receive)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            body = b"".join(chunks)
            return _replay([{"type": "http.request", "body": body, "more_body": False}], receive)


def _replay(
    messages: list[dict[str, Any]], receive: Callable[[], Awaitable[dict[str, Any]]]
) -> Callable[[], Awaitable[dict[str, Any]]]:
    pending = list(messages)

    async def replayed() -> dict[str, Any]:
        return pending.pop(0) if pending else await receive()

    return replayed


@dataclass
class BackgroundWork:
    """A coroutine factory run for the app's lifetime (outbox relay, scheduler, ...)."""

    name: str
    run: Callable[[], Awaitable[None]]


@dataclass
class Lifecycle:
    """Opens the pool and starts background work at startup; stops both at shutdown. With
    :meth:`watch_event_loop`, the app also joins its event loop's lag probe while it runs."""

    pool: psycopg_pool.AsyncConnectionPool | None
    on_startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    background: list[BackgroundWork] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _lag_watch: tuple[str, ServiceMetrics] | None = None

    def watch_event_loop(self, service: str, metrics: ServiceMetrics) -> None:
        """Measure the event loop's lag while the app runs, into ``metrics`` (one probe per
        loop, however many apps share it: see :class:`EventLoopLag`)."""
        self._lag_watch = (service, metrics)

    async def process_startup(self, scope: Any, event: Any) -> None:
        if self._lag_watch is not None:
            service, metrics = self._lag_watch
            metrics.event_loop_lag = EventLoopLag.of_running_loop()
            metrics.event_loop_lag.join(service)
        if self.pool is not None:
            await open_pool(self.pool)
        for hook in self.on_startup:
            await hook()
        for work in self.background:
            self._tasks.append(asyncio.create_task(_supervised(work), name=work.name))
        if gc.get_freeze_count() == 0:  # once per process (serve all starts three apps)
            # Which loop and HTTP parser serve this process (uvloop + httptools unless told).
            log.info("server_stack", **running_stack())
            # What exists now (modules, classes, settings) lives as long as the process: out
            # of the collector's sight, a full collection walks only what requests create
            # (one held the event loop 107 ms in bench/scheduler_stall.py without this).
            gc.freeze()

    async def process_shutdown(self, scope: Any, event: Any) -> None:
        if self._lag_watch is not None:
            service, metrics = self._lag_watch
            if metrics.event_loop_lag is not None:
                await metrics.event_loop_lag.leave(service)
                metrics.event_loop_lag = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for hook in self.on_shutdown:
            await hook()
        if self.pool is not None:
            await self.pool.close(timeout=5.0)


async def _supervised(work: BackgroundWork) -> None:
    """Keep a background loop alive: a crash is logged and the loop restarted after a pause."""
    while True:
        try:
            await work.run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background_work_crashed", work=work.name)
            await asyncio.sleep(1.0)


# No chat service is part of this backend (reference-api.md §1.9).
CHATKIT_STATUS = "/chatkit (not configured)"


class RootResource:
    """``GET /``: the contract's body (reference-api.md §1.1), plus which service answered."""

    def __init__(self, version: str, service: str) -> None:
        self.body = {
            "name": API_TITLE,
            "version": version,
            "docs": "/docs",
            "health": "/health",
            "chatkit": CHATKIT_STATUS,
            "service": service,
        }

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = self.body


class HealthResource:
    """Liveness: the process answers. Never touches the database."""

    def __init__(self, version: str) -> None:
        self.body = {"status": "healthy", "version": version}

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = self.body


class ReadyResource:
    """Readiness: the database answers within 2 s (503 with a reason otherwise), plus the
    details each service adds (outbox backlog, key cache age, ...)."""

    def __init__(
        self, pool: psycopg_pool.AsyncConnectionPool | None, checks: Sequence[ReadinessCheck]
    ) -> None:
        self.pool = pool
        self.checks = list(checks)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body: dict[str, Any] = {"status": "ready", "database": "connected"}
        if self.pool is not None:
            try:
                await ping(self.pool, within=2.0)
            except Exception as exc:  # any failure means "not ready", with the reason
                log.warning("not_ready", error=type(exc).__name__)
                resp.status = 503
                resp.set_header("Retry-After", "5")
                resp.media = {
                    **error_body(503, DB_UNAVAILABLE),
                    "status": "unhealthy",
                    "database": f"unreachable: {type(exc).__name__}",
                }
                return
        for check in self.checks:
            try:
                body.update(await check())
            except Exception as exc:
                body.setdefault("warnings", []).append(f"{type(exc).__name__}: {exc}")
        resp.media = body


HEALTH_TAG = "health"
HEALTH_ROUTES_DOC = {
    "/": Operation(
        "GET",
        "Service information",
        HEALTH_TAG,
        operation_id="getServiceInfo",
        public=True,
        description="The API's name and version, where its docs and health checks are, and "
        "`service`: which of its services answered.",
    ),
    "/health": Operation("GET", "Liveness", HEALTH_TAG, operation_id="getLiveness", public=True),
    "/health/ready": Operation(
        "GET", "Readiness", HEALTH_TAG, operation_id="getReadiness", public=True, errors=(503,)
    ),
}


def health_routes(
    service: str,
    version: str,
    pool: psycopg_pool.AsyncConnectionPool | None,
    checks: Sequence[ReadinessCheck] = (),
) -> list[Route]:
    resources: dict[str, object] = {
        "/": RootResource(version, service),
        "/health": HealthResource(version),
        "/health/ready": ReadyResource(pool, checks),
    }
    return [Route(path, resources[path], (HEALTH_ROUTES_DOC[path],)) for path in resources]


class ServiceApp(falcon.asgi.App):
    """A Falcon app that remembers its route table (for the dev router and gateway checks)."""

    routes: list[Route]
    metrics: ServiceMetrics
    max_body_bytes: int = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:  # type: ignore[override]
        if scope["type"] == "http" and scope.get("method") in {"POST", "PUT", "PATCH", "DELETE"}:
            _lowercase_media_type(scope)
            if self.max_body_bytes and not any(
                name == b"content-length" for name, _ in scope.get("headers", ())
            ):
                receive = await _buffer_unsized_body(scope, receive, self.max_body_bytes)
        await super().__call__(scope, receive, send)


def _lowercase_media_type(scope: dict[str, Any]) -> None:
    """Media types are case-insensitive (RFC 9110 §8.3.1) but Falcon picks a body's handler
    by exact name: ``Application/JSON`` is rewritten ``application/json`` (parameters kept)."""
    headers = scope.get("headers") or ()
    for index, (name, value) in enumerate(headers):
        if name == b"content-type":
            essence, separator, parameters = value.partition(b";")
            if essence != essence.lower():
                rewritten = list(headers)
                rewritten[index] = (name, essence.lower() + separator + parameters)
                scope["headers"] = rewritten
            return


def build_app(
    *,
    service: str,
    title: str,
    settings: Settings,
    routes: list[Route],
    lifecycle: Lifecycle,
    middleware: Sequence[Any] = (),
    readiness: Sequence[ReadinessCheck] = (),
    version: str = __version__,
    authenticator: Authenticator | None = None,
) -> ServiceApp:
    """A Falcon ASGI app with the middleware, handlers, health and docs every service shares.

    What clients see at ``/``, ``/docs``, ``/redoc`` and in ``/openapi.json`` is the one
    "TaskFlow API" in every mode; ``service`` (GET /'s ``service``, ``info.x-service``) and
    ``title`` (the introduction's "This service" section) say which part this process serves.

    ``authenticator`` installs :class:`AuthMiddleware` over this app's route table (public =
    operations marked ``public=True`` plus health and docs; ``Route.internal`` = service
    credentials only) and adds its key-cache facts to ``/health/ready``. ``middleware`` runs
    after request-context, CORS, body-limit and authentication."""
    checks = list(readiness)
    if authenticator is not None:
        checks.append(authenticator.readiness)
    all_routes = health_routes(service, version, lifecycle.pool, checks) + list(routes)
    metrics, metrics_middleware, metrics_route = install_metrics(service, lifecycle.pool)
    all_routes.append(metrics_route)
    lifecycle.watch_event_loop(service, metrics)
    metrics.track_outbox_backlog(outbox_backlog_from(readiness))
    if authenticator is not None:
        metrics.track_jwks_cache_age(lambda: authenticator.jwks.age)
    auth = (
        [AuthMiddleware(authenticator, all_routes, require_tenant=settings.is_production)]
        if authenticator is not None
        else []
    )
    rate_limit = RateLimitMiddleware.from_settings(settings)  # None when off
    app = ServiceApp(
        middleware=[
            lifecycle,
            metrics_middleware,
            RequestContextMiddleware(service),
            falcon.CORSMiddleware(
                allow_origins=list(settings.allowed_origins) or "*",
                allow_credentials=list(settings.allowed_origins) or None,
                expose_headers=[
                    "X-Request-Id",
                    "ETag",
                    "Retry-After",
                    "X-Next-Cursor",
                    "Link",
                    "Idempotent-Replayed",
                ],
            ),
            BodyLimitMiddleware(settings.max_body_bytes),
            *([rate_limit] if rate_limit else []),
            *auth,
            *middleware,
        ]
    )
    app.req_options.media_handlers[falcon.MEDIA_JSON] = JSON_HANDLER
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = JSON_HANDLER
    app.req_options.strip_url_path_trailing_slash = True
    install_error_handlers(app)
    install_outage_handler(app)
    for route in all_routes:
        if route.suffix:
            app.add_route(route.path, route.resource, suffix=route.suffix)
        else:
            app.add_route(route.path, route.resource)
    document = build_spec(
        API_TITLE,
        version,
        all_routes,
        API_INTRODUCTION + service_note(service, title),
        service=service,
    )
    mount_docs(app, API_TITLE, document)
    app.routes = all_routes
    app.max_body_bytes = settings.max_body_bytes
    app.metrics = metrics
    return app
