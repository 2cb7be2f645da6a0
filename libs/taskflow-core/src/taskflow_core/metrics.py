"""Prometheus metrics of a service, served at ``/metrics``.

Requests are counted by route template (``/api/tasks/{task_id}``, never the raw path, so the
series stay few) and status, with a latency histogram; the pool's size and waiting clients,
the outbox backlog and the JWKS cache age are read when Prometheus scrapes. ``/metrics`` needs
no token: it is reachable inside the deployment only, because the gateway never routes it.

Each app has its own registry, so the three apps of the all-in-one dev process do not collide.

The event loop's lag (how late a timer fires: time during which the process answered nothing)
is measured by one probe per event loop, shared by the apps running on it, so ``taskflow serve
all`` probes and warns once per stall, naming its services.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, ClassVar

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
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
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

LAG_PROBE_INTERVAL = 0.02  # a stall longer than threshold + this is always seen
LAG_WINDOW = 10.0  # seconds the worst-lag gauge looks back
LAG_THRESHOLD = 0.05  # background work may hold the loop this long at most
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LAG_WARNING_EVERY = 1.0  # seconds between two lag warnings (stalls in between are counted)


class EventLoopLag:
    """How late the event loop runs a timer: a probe sleeps ``interval`` and records by how
    much it overslept. While the loop is held (a long computation, blocking I/O) nothing else
    runs, /health included, so the lag is the time the process answered nobody.

    One per event loop (:meth:`of_running_loop`): apps sharing a loop ``join`` it, the probe
    runs while any of them is started, and a lag over ``threshold`` logs one warning naming
    them all (at most one per ``warning_every`` s, with the stalls seen in between).
    """

    _by_loop: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, EventLoopLag]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(
        self,
        *,
        interval: float = LAG_PROBE_INTERVAL,
        window: float = LAG_WINDOW,
        threshold: float = LAG_THRESHOLD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.window = window
        self.threshold = threshold
        self.clock = clock
        self.warning_every = LAG_WARNING_EVERY
        self.services: list[str] = []
        self.bucket_counts = [0] * (len(LAG_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0
        self.count = 0
        self._recent: deque[tuple[float, float]] = deque()  # (when, lag), lags decreasing
        self._last_warning = float("-inf")
        self._stalls_unreported = 0
        self._probe: asyncio.Task[None] | None = None

    @classmethod
    def of_running_loop(cls) -> EventLoopLag:
        """The monitor of the running event loop (created on first use)."""
        loop = asyncio.get_running_loop()
        monitor = cls._by_loop.get(loop)
        if monitor is None:
            monitor = cls._by_loop[loop] = cls()
        return monitor

    def join(self, service: str) -> None:
        """``service`` runs on this loop: probe (if not already) and name it in warnings."""
        self.services.append(service)
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._run(), name="event-loop-lag-probe")

    async def leave(self, service: str) -> None:
        """``service`` stopped; the probe stops with the last one."""
        with contextlib.suppress(ValueError):
            self.services.remove(service)
        if not self.services and self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started, cpu_started = loop.time(), time.thread_time()
            await asyncio.sleep(self.interval)
            lag = max(0.0, loop.time() - started - self.interval)
            self.observe(lag, cpu=time.thread_time() - cpu_started)

    def observe(self, lag: float, cpu: float | None = None) -> None:
        """Record one probe's lag; ``cpu`` is the CPU time the loop's thread used meanwhile
        (near the lag: code held the loop; near zero: the host did not run the process)."""
        now = self.clock()
        self.count += 1
        self.total += lag
        index = next((i for i, bound in enumerate(LAG_BUCKETS) if lag <= bound), -1)
        self.bucket_counts[index] += 1
        while self._recent and self._recent[-1][1] <= lag:
            self._recent.pop()
        self._recent.append((now, lag))
        if lag > self.threshold:
            self._stalls_unreported += 1
            if now - self._last_warning >= self.warning_every:
                log.warning(
                    "event_loop_lag",
                    lag_ms=round(lag * 1000, 1),
                    cpu_ms=None if cpu is None else round(cpu * 1000, 1),
                    threshold_ms=round(self.threshold * 1000),
                    stalls=self._stalls_unreported,
                    services=list(self.services),
                    hint="every request of this process waited; cpu_ms near lag_ms: code held "
                    "the event loop, near 0: the host did not schedule the process",
                )
                self._last_warning = now
                self._stalls_unreported = 0

    def worst(self) -> float:
        """The largest lag seen in the last ``window`` seconds."""
        horizon = self.clock() - self.window
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()
        return self._recent[0][1] if self._recent else 0.0


class EventLoopLagCollector(Collector):
    """The lag of the event loop the service runs on, read at scrape time."""

    def __init__(self, service: str, source: Callable[[], EventLoopLag | None]) -> None:
        self.service = service
        self.source = source

    def collect(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily]:
        lag = self.source()
        if lag is None:  # not started
            return
        worst = GaugeMetricFamily(
            "taskflow_event_loop_lag_seconds",
            f"Worst event-loop lag seen over the last {lag.window:.0f} s (a timer's delay: "
            "time during which the process answered no request)",
            labels=["service"],
        )
        worst.add_metric([self.service], lag.worst())
        yield worst
        probes = HistogramMetricFamily(
            "taskflow_event_loop_lag_probe_seconds",
            f"Event-loop lag of each probe (every {lag.interval * 1000:.0f} ms)",
            labels=["service"],
        )
        cumulative, buckets = 0, []
        for bound, hits in zip((*LAG_BUCKETS, float("inf")), lag.bucket_counts, strict=True):
            cumulative += hits
            buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
        probes.add_metric([self.service], buckets, lag.total)
        yield probes


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
        self.event_loop_lag: EventLoopLag | None = None  # set when the app starts
        self.registry.register(EventLoopLagCollector(service, lambda: self.event_loop_lag))

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
            operation_id="getMetrics",
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
