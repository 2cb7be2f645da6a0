"""Prometheus metrics of a service, served at ``/metrics``.

Requests are counted by route template (``/api/tasks/{task_id}``, never the raw path, so the
series stay few) and status, with a latency histogram; the pool's size and waiting clients,
the outbox backlog and the JWKS cache age are read when Prometheus scrapes. ``/metrics`` needs
no token: it is reachable inside the deployment only, because the gateway never routes it.

Each app has its own registry, so the three apps of the all-in-one dev process do not collide.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import falcon
import falcon.asgi
import psycopg_pool
import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .routing import Operation, Route

log = structlog.get_logger("taskflow.metrics")

METRICS_PATH = "/metrics"
UNMATCHED_ROUTE = "unmatched"  # 404s: one series, whatever path was asked for
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SOURCE_TIMEOUT = 2.0  # a slow gauge source must not hang the scrape

# Returns the current value (None: unknown); may be a coroutine function.
GaugeSource = Callable[[], float | int | Awaitable[float | int | None] | None]


class PoolCollector(Collector):
    """The connection pool's own statistics, read at scrape time."""

    def __init__(self, service: str, pool: psycopg_pool.AsyncConnectionPool) -> None:
        self.service = service
        self.pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self.pool.get_stats()
        facts = {
            "taskflow_db_pool_size": ("Connections open in the pool", stats.get("pool_size", 0)),
            "taskflow_db_pool_available": (
                "Idle connections ready for a request",
                stats.get("pool_available", 0),
            ),
            "taskflow_db_pool_waiting_clients": (
                "Requests waiting for a connection",
                stats.get("requests_waiting", 0),
            ),
            "taskflow_db_pool_max_size": ("Largest size the pool may grow to", self.pool.max_size),
        }
        for name, (doc, value) in facts.items():
            family = GaugeMetricFamily(name, doc, labels=["service"])
            family.add_metric([self.service], float(value))
            yield family


MAX_CACHED_LABELS = 1000


class ServiceMetrics:
    """The metrics of one service app and the hooks that feed them."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.requests = Counter(
            "taskflow_http_requests",
            "HTTP requests answered, by route template and status",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "taskflow_http_request_duration_seconds",
            "Time from request to response, by route template",
            ["service", "method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "taskflow_outbox_backlog",
            "Audit events written but not yet delivered",
            ["service"],
            registry=self.registry,
        )
        self.jwks_cache_age = Gauge(
            "taskflow_jwks_cache_age_seconds",
            "Seconds since the signing keys were fetched from the SSO",
            ["service"],
            registry=self.registry,
        )
        self._sources: list[tuple[Gauge, GaugeSource]] = []

    # hooks -----------------------------------------------------------------------------
    def watch_pool(self, pool: psycopg_pool.AsyncConnectionPool) -> None:
        """Report ``pool``'s size and waiting clients."""
        self.registry.register(PoolCollector(self.service, pool))

    def track_outbox_backlog(self, source: GaugeSource) -> None:
        """``source()`` → events not yet delivered; asked at every scrape."""
        self._sources.append((self.outbox_backlog, source))

    def track_jwks_cache_age(self, source: GaugeSource) -> None:
        """``source()`` → seconds since the keys were fetched (None before the first fetch)."""
        self._sources.append((self.jwks_cache_age, source))

    # serving ---------------------------------------------------------------------------
    def middleware(self) -> MetricsMiddleware:
        return MetricsMiddleware(self)

    def route(self) -> Route:
        operation = Operation(
            "GET",
            "Prometheus metrics",
            "metrics",
            public=True,
            description="For the deployment's scraper; the public gateway does not route it.",
        )
        return Route(METRICS_PATH, MetricsResource(self), (operation,))

    async def refresh(self) -> None:
        """Ask every gauge source for its current value."""
        for gauge, source in self._sources:
            try:
                value = source()
                if inspect.isawaitable(value):
                    value = await asyncio.wait_for(value, SOURCE_TIMEOUT)
            except Exception as exc:  # a failing source must not fail the scrape
                log.warning("metrics_source_failed", metric=gauge._name, error=repr(exc))
                continue
            if value is None:  # unknown (no outbox here, keys never fetched): no sample
                with contextlib.suppress(KeyError):
                    gauge.remove(self.service)
            else:
                gauge.labels(self.service).set(float(value))

    async def exposition(self) -> bytes:
        await self.refresh()
        return generate_latest(self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        # labels() hashes and validates on every call; the children of a (method, route,
        # status) are looked up once (route templates and statuses are few).
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(self.service, method, route, str(status)),
                self.latency.labels(self.service, method, route),
            )
            if len(self._children) < MAX_CACHED_LABELS:
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


class MetricsResource:
    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.data = await self.metrics.exposition()
        resp.content_type = CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts every request under its route template, timed from the moment
    ``RequestContextMiddleware`` (which runs inside it) saw it."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    async def process_response(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: Any,
        req_succeeded: bool,
    ) -> None:
        started = getattr(req.context, "started", None)
        if started is None:
            return
        route = req.uri_template if resource is not None and req.uri_template else UNMATCHED_ROUTE
        status = falcon.http_status_to_code(resp.status)
        self.metrics.observe(req.method, route, status, time.perf_counter() - started)


def outbox_backlog_from(checks: Sequence[Callable[[], Awaitable[dict[str, Any]]]]) -> GaugeSource:
    """A backlog source reading the ``{"outbox": {"backlog": n}}`` fact that a service's
    readiness check reports (None when no check reports one)."""

    async def source() -> int | None:
        for check in checks:
            outbox = (await check()).get("outbox")
            if isinstance(outbox, dict) and isinstance(outbox.get("backlog"), int):
                return int(outbox["backlog"])
        return None

    return source


def install_metrics(
    service: str, pool: psycopg_pool.AsyncConnectionPool | None
) -> tuple[ServiceMetrics, MetricsMiddleware, Route]:
    """What ``build_app`` adds: the app's metrics, the timing middleware and ``/metrics``."""
    metrics = ServiceMetrics(service)
    if pool is not None:
        metrics.watch_pool(pool)
    return metrics, metrics.middleware(), metrics.route()
