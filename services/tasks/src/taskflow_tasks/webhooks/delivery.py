"""The webhook delivery worker: sends pending deliveries, at least once.

- Each round claims (a lease, no transaction across HTTP) the oldest unsettled delivery of each
  (endpoint, task), at most a few per endpoint, and sends them concurrently: one task's events
  reach an endpoint in order; a hanging endpoint holds its own slots only (10 s timeout).
- 2xx: delivered. 410: the endpoint is disabled. Anything else (or no answer, a redirect, or
  an address the SSRF guard refuses now): retried with exponential backoff and jitter, with the
  same ``webhook-id``; an endpoint failing for ``WEBHOOK_DISABLE_AFTER_DAYS`` is disabled, with
  an audit entry. Retries go on until then (far beyond 24 h with the defaults).
- The fan-out (``fanout``) runs in the same loop: it is a cheap transaction per round.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import psycopg_pool
import structlog
from taskflow_core.db import DATABASE_OUTAGE_ERRORS, transaction
from taskflow_core.service import BackgroundWork

from ..events.config import EventSettings
from ..events.metrics import EVENT_METRICS
from ..events.notify import refresh_pending
from ..events.pacing import Pacer
from ..outbox.events import Actor, record_event
from ..outbox.wakeup import OutboxWakeup
from . import rules, store
from .fanout import BATCH, fan_out_once
from .ssrf import UnsafeURL, check_url

log = structlog.get_logger("taskflow.webhooks")

PER_ENDPOINT = 16
TICK = 0.01
SYSTEM = Actor(None, None, "system")
CLIENT_IDLE = 300.0  # seconds before an endpoint's unused client (its connections) is closed


class EndpointClients:
    """One HTTP client per endpoint origin, each pooling at most ``PER_ENDPOINT`` connections:
    no redirects followed, no credentials of ours.

    httpx looks at every connection of its pool each time it places a request; one pool over
    every endpoint's connections made that the largest cost of a delivery (62 % of the worker's
    CPU while draining a backlog to three endpoints)."""

    def __init__(self) -> None:
        self.clients: dict[tuple[str, str, int | None], httpx.AsyncClient] = {}
        self.used: dict[tuple[str, str, int | None], float] = {}

    def for_url(self, url: str) -> httpx.AsyncClient:
        parts = urlsplit(url)
        origin = (parts.scheme, parts.hostname or "", parts.port)
        client = self.clients.get(origin)
        if client is None:
            limits = httpx.Limits(
                max_connections=PER_ENDPOINT, max_keepalive_connections=PER_ENDPOINT
            )
            client = httpx.AsyncClient(follow_redirects=False, limits=limits)
            self.clients[origin] = client
        self.used[origin] = time.monotonic()
        return client

    async def close_idle(self) -> None:
        """Close the clients of origins unused for ``CLIENT_IDLE`` s (a delivery takes at
        most ``WEBHOOK_TIMEOUT``)."""
        now = time.monotonic()
        for origin, last in list(self.used.items()):
            if now - last > CLIENT_IDLE:
                del self.used[origin]
                await self.clients.pop(origin).aclose()

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()
        self.clients.clear()
        self.used.clear()


class DeliveryWorker:
    def __init__(
        self,
        settings: EventSettings,
        pool: psycopg_pool.AsyncConnectionPool,
        clients: EndpointClients,
        wakeup: OutboxWakeup,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.clients = clients
        self.pacer = Pacer(wakeup, settings.poll_interval)
        self.lease = timedelta(seconds=settings.webhook_timeout * 3 + 30)
        self.inflight: set[asyncio.Task[None]] = set()
        self.succeeded: list[tuple[dict[str, Any], int]] = []
        self.per_hook: dict[int, int] = {}  # deliveries in flight per endpoint

    async def run_forever(self) -> None:
        try:
            while True:
                self.pacer.begin()
                try:
                    fanned, active = await fan_out_once(self.pool)
                    await self.flush()
                    await self.start_due()
                except DATABASE_OUTAGE_ERRORS as exc:
                    log.warning("webhooks_database_unavailable", error=type(exc).__name__)
                    fanned, active = 0, True
                if fanned >= BATCH:
                    continue
                await refresh_pending(self.pool)
                await self.clients.close_idle()
                woken = await self.pacer.idle(self.inflight, listening=active)
                if not woken and self.inflight:  # gather a few more answers: one settle for all
                    await asyncio.sleep(TICK)
        finally:
            for task in self.inflight:
                task.cancel()

    async def start_due(self) -> int:
        """Claim what is due (as many as there are free slots) and start sending it."""
        capacity = self.settings.webhook_concurrency
        free = capacity - len(self.inflight)
        if free <= 0 or (self.inflight and free < capacity // 4):
            return 0
        room = {hook: PER_ENDPOINT - n for hook, n in self.per_hook.items()}
        async with transaction(self.pool) as conn:
            due = await store.claim(conn, free, room, PER_ENDPOINT, self.lease)
        for delivery in due:
            hook = delivery["webhook_id"]
            self.per_hook[hook] = self.per_hook.get(hook, 0) + 1
            task = asyncio.create_task(self.deliver(delivery))
            self.inflight.add(task)
            task.add_done_callback(self.inflight.discard)
        return len(due)

    async def flush(self) -> None:
        """Settle the deliveries answered with a 2xx since the last round, in one transaction
        (until then their claim keeps them from being sent again)."""
        if not self.succeeded:
            return
        batch, self.succeeded = self.succeeded, []
        try:
            async with transaction(self.pool) as conn:
                await store.settle_successes(conn, batch)
        except DATABASE_OUTAGE_ERRORS:
            self.succeeded = batch + self.succeeded
            raise

    async def deliver(self, delivery: dict[str, Any]) -> None:
        try:
            await self._deliver(delivery)
        except DATABASE_OUTAGE_ERRORS as exc:  # the lease expires; it is sent again
            log.warning("webhook_settle_failed", delivery_id=delivery["id"], error=repr(exc))
        except Exception:
            log.exception("webhook_delivery_crashed", delivery_id=delivery["id"])
        finally:
            self.per_hook[delivery["webhook_id"]] -= 1

    async def _deliver(self, delivery: dict[str, Any]) -> None:
        url = str(delivery["url"])
        try:
            await check_url(url, allow_private=self.settings.webhook_allow_private)
        except UnsafeURL as exc:
            await self._failed(delivery, None, f"refused: {exc}", "refused")
            return
        body = orjson.dumps(delivery["body"])
        now = datetime.now(UTC)
        headers = rules.headers(delivery["secret"], delivery["message_id"], now, body)
        try:
            response = await self.clients.for_url(url).post(
                url, content=body, headers=headers, timeout=self.settings.webhook_timeout
            )
        except httpx.HTTPError as exc:
            await self._failed(delivery, None, f"{type(exc).__name__}: {exc}"[:300], "failed")
            return
        status = response.status_code
        if 200 <= status < 300:
            self.succeeded.append((delivery, status))
            latency = (datetime.now(UTC) - delivery["committed_at"]).total_seconds()
            EVENT_METRICS.delivered("delivered", latency)
            return
        if status == 410:
            await self._gone(delivery)
            return
        await self._failed(delivery, status, f"answered {status}", "failed")

    async def _failed(
        self, delivery: dict[str, Any], status: int | None, error: str, outcome: str
    ) -> None:
        s = self.settings
        retry_in = rules.backoff(
            delivery["attempts"] + 1, s.webhook_backoff_base, s.webhook_backoff_max
        )
        async with transaction(self.pool) as conn:
            since = await store.settle_failure(conn, delivery, status, error, retry_in)
            too_long = timedelta(days=s.webhook_disable_after_days)
            if since is not None and datetime.now(UTC) - since >= too_long:
                reason = f"failing since {since.isoformat()}: {error}"
                await self._disable(conn, delivery["webhook_id"], reason)
        EVENT_METRICS.delivered(outcome)
        log.info(
            "webhook_delivery_failed",
            delivery_id=delivery["id"],
            webhook_id=delivery["webhook_id"],
            error=error,
            retry_in_s=round(retry_in, 2),
        )

    async def _gone(self, delivery: dict[str, Any]) -> None:
        async with transaction(self.pool) as conn:
            await store.settle_failure(conn, delivery, 410, "answered 410 Gone", None)
            await self._disable(conn, delivery["webhook_id"], "the endpoint answered 410 Gone")
        EVENT_METRICS.delivered("gone")

    async def _disable(self, conn: Any, webhook_id: int, reason: str) -> None:
        hook = await store.disable(conn, webhook_id, reason)
        if hook is None:
            return
        cur = await conn.execute(
            "SELECT tenant_id FROM tasks.projects WHERE id = %s", (hook["project_id"],)
        )
        project = await cur.fetchone()
        await record_event(
            conn,
            tenant_id=project["tenant_id"] if project else "unknown",
            project_id=hook["project_id"],
            entity_type="webhook",
            entity_id=webhook_id,
            action="disabled",
            actor=SYSTEM,
            details={"url": hook["url"], "reason": reason[:500]},
            occurred_at=datetime.now(UTC),
        )
        log.warning("webhook_disabled", webhook_id=webhook_id, reason=reason)


def webhook_work(
    settings: EventSettings, pool: psycopg_pool.AsyncConnectionPool, wakeup: OutboxWakeup
) -> BackgroundWork:
    """Fan-out and delivery as background work of the tasks app (its own HTTP clients)."""

    async def run() -> None:
        clients = EndpointClients()
        try:
            await DeliveryWorker(settings, pool, clients, wakeup).run_forever()
        finally:
            await clients.aclose()

    return BackgroundWork("webhooks", run)
