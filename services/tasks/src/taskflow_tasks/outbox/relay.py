"""The outbox relay: delivers audit events from ``tasks.outbox`` to the audit service.

Per round, in short transactions (PgBouncer transaction mode safe: no session state, no
transaction open across the HTTP call):

1. claim: lock the oldest pending events ``FOR UPDATE SKIP LOCKED`` and mark them claimed for a
   lease (``claimed_until``), but only if they start at the oldest pending event and no other
   relay's claim is live. So exactly one batch is in flight across all replicas, always the
   oldest one, and the audit service (which assigns its ids in arrival order) stores events in
   outbox order. (The alternative, letting each replica post its own batch and reorder on the
   audit side, cannot work: the audit service cannot know of an older batch still in flight.)
2. post the batch to ``POST {AUDIT_URL}/internal/audit/events`` with a service credential;
3. on the acknowledgement, mark each event delivered (stored, duplicate, or rejected as
   malformed, with the reason kept in ``last_error``); on failure keep the claim for the backoff
   delay (exponential, capped, with jitter), so every replica waits, and log the backlog.

Rounds follow each other at once while there is work; idle, the relay waits for a wake-up (a
write answered by this replica, a ``NOTIFY taskflow_outbox``: see ``wakeup``) or, failing one,
``OUTBOX_RELAY_INTERVAL``.

A relay that dies mid-batch leaves a claim that expires; the batch is then posted again, and the
audit service acknowledges the events it already has as duplicates (idempotent on event_id).

"In order" means: oldest visible event first. Events written while the audit service is away
arrive exactly in outbox order. Between transactions still running concurrently, the order is
the order their commits make them visible (an outbox id taken by a transaction that commits
later is delivered later); the events of one entity never swap, because the change and its
event are written under that entity's row lock. Reads sort by the event's time anyway.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import httpx
import psycopg_pool
import structlog
from taskflow_core.auth import service_credentials_hook
from taskflow_core.config import Settings
from taskflow_core.db import DATABASE_OUTAGE_ERRORS, transaction
from taskflow_core.http import create_http_client
from taskflow_core.service import BackgroundWork

from .rules import Acknowledgement, Backoff, read_acknowledgement
from .store import backlog, claim_batch, hold_claim, mark_delivered, prune_delivered
from .wakeup import OutboxWakeup, listen_enabled, listener_work

log = structlog.get_logger("taskflow.outbox")

INGEST_PATH = "/internal/audit/events"
# The audit service takes up to 1,000 events a request (taskflow_audit.events.MAX_BATCH); one
# batch is in flight across all replicas, so its size sets the drain rate (bench/relay_drain.py).
BATCH_SIZE = 1000
BACKLOG_LOG_INTERVAL = 10.0
RETENTION = timedelta(days=7)
PRUNE_INTERVAL = 600.0


class DeliveryFailed(Exception):
    """The audit service did not acknowledge the batch (down, refused, or answered nonsense)."""


class OutboxRelay:
    def __init__(
        self,
        settings: Settings,
        pool: psycopg_pool.AsyncConnectionPool,
        http: httpx.AsyncClient,
        *,
        batch_size: int = BATCH_SIZE,
        wakeup: OutboxWakeup | None = None,
    ) -> None:
        self.pool = pool
        self.wakeup = (wakeup or OutboxWakeup(enabled=False)).subscribe()
        self.http = http
        self.url = settings.audit_url.rstrip("/") + INGEST_PATH
        self.interval = max(0.05, settings.outbox_relay_interval)
        self.batch_size = batch_size
        # The audit service refuses bodies over MAX_BODY_BYTES (413): batches stay well under,
        # and a single event too large to ever be accepted is set aside, not retried forever.
        self.batch_bytes = settings.max_body_bytes // 2
        self.event_bytes = settings.max_body_bytes - 4096
        self.backoff = Backoff.for_interval(self.interval)
        # Long enough for one POST (with its timeouts) and the acknowledgement's transaction.
        self.lease = timedelta(seconds=max(30.0, 3 * settings.http_timeout))
        self.failures = 0
        self._last_backlog_log = 0.0
        self._last_prune = 0.0

    async def run_forever(self) -> None:
        """Deliver until nothing is pending, then wait for a wake-up (a write of this replica,
        a NOTIFY) or the poll interval. After a delivered batch it claims again at once: events
        committed meanwhile, also by replicas that found this relay's claim live, go next."""
        while True:
            self.wakeup.clear()  # before the claim: a wake during this round is kept
            try:
                settled = await self.deliver_once()
            except DATABASE_OUTAGE_ERRORS as exc:
                await self._back_off(f"database unavailable: {type(exc).__name__}")
                continue
            if settled == 0:
                await self._maybe_prune()
                await self.wakeup.wait(self.interval)

    async def deliver_once(self) -> int:
        """Claim, post and acknowledge one batch; the number of events it settled."""
        async with transaction(self.pool) as conn:
            batch = await claim_batch(conn, self.batch_size, self.lease, self.batch_bytes)
        if not batch:
            await self._log_backlog()
            return 0
        ids = [row["id"] for row in batch]
        if int(batch[0]["size"]) > self.event_bytes:
            return await self._set_aside(batch[0])
        try:
            ack = await self._post(batch)
        except DeliveryFailed as exc:
            await self._back_off(str(exc), claimed=ids)
            return 0
        self.failures = 0
        async with transaction(self.pool) as conn:
            await mark_delivered(conn, ack.delivered, ack.rejected)
            if ack.missing:  # not acknowledged: released for the next round
                await hold_claim(conn, ack.missing, timedelta(0), "no result for this event")
        if ack.rejected:
            log.error(
                "outbox_events_rejected", rejected={str(k): v for k, v in ack.rejected.items()}
            )
        if ack.missing:
            log.error("outbox_events_unacknowledged", outbox_ids=ack.missing[:20])
        log.info(
            "outbox_delivered",
            delivered=len(ack.delivered),
            rejected=len(ack.rejected),
            first_id=ids[0],
            last_id=ids[-1],
        )
        await self._log_backlog()
        return len(batch) - len(ack.missing)

    async def _set_aside(self, row: dict[str, Any]) -> int:
        reason = f"event of {row['size']} bytes exceeds what the audit service accepts"
        async with transaction(self.pool) as conn:
            await mark_delivered(conn, [], {row["id"]: reason})
        log.error("outbox_event_too_large", outbox_id=row["id"], size=row["size"])
        return 1

    async def _back_off(self, error: str, claimed: list[int] | None = None) -> None:
        """Wait before the next attempt, longer after each failure in a row; a claimed batch
        stays claimed for that long, so the other replicas wait too."""
        self.failures += 1
        delay = self.backoff.delay(self.failures)
        if claimed:
            try:
                async with transaction(self.pool) as conn:
                    await hold_claim(conn, claimed, timedelta(seconds=delay), error)
            except DATABASE_OUTAGE_ERRORS:
                pass  # the claim simply expires
        await self._log_backlog(force=True, error=error[:300], retry_in_s=round(delay, 2))
        await asyncio.sleep(delay)

    async def _post(self, batch: list[dict[str, Any]]) -> Acknowledgement:
        # The payloads are JSON text as stored: joined, not parsed and encoded again.
        body = '{"events":[' + ",".join(row["payload"] for row in batch) + "]}"
        try:
            response = await self.http.post(
                self.url, content=body.encode(), headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"audit service unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise DeliveryFailed(f"audit service answered {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise DeliveryFailed("audit service answered a non-JSON body") from exc
        return read_acknowledgement(batch, body)

    async def _log_backlog(self, force: bool = False, **fields: Any) -> None:
        now = time.monotonic()
        if not force and now - self._last_backlog_log < BACKLOG_LOG_INTERVAL:
            return
        try:
            facts = await outbox_backlog(self.pool)
        except DATABASE_OUTAGE_ERRORS:
            facts = {"outbox": {"backlog": "unknown (database unavailable)"}}
        self._last_backlog_log = now
        pending = facts["outbox"]["backlog"]
        if force:
            log.warning("outbox_delivery_failed", **facts["outbox"], **fields)
        elif pending:
            log.info("outbox_backlog", **facts["outbox"])

    async def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < PRUNE_INTERVAL:
            return
        self._last_prune = now
        async with transaction(self.pool) as conn:
            removed = await prune_delivered(conn, RETENTION)
        if removed:
            log.info("outbox_pruned", removed=removed)


async def outbox_backlog(pool: psycopg_pool.AsyncConnectionPool) -> dict[str, Any]:
    """``{"outbox": {"backlog": n, "oldest_age_s": s}}`` for ``/health/ready`` and the log."""
    async with pool.connection() as conn:
        return {"outbox": await backlog(conn)}


def relay_work(
    settings: Settings,
    pool: psycopg_pool.AsyncConnectionPool,
    http_client: httpx.AsyncClient | None = None,
    wakeup: OutboxWakeup | None = None,
) -> list[BackgroundWork]:
    """The relay as the tasks app's background work (with its LISTEN connection, when
    ``OUTBOX_LISTEN`` allows one; see ``wakeup``).

    ``http_client`` must carry the tasks service's credential for the audit service; by default
    the relay makes that one client itself (and closes it when the app stops). ``wakeup`` is
    what the app's :class:`~.wakeup.WakeOnWrite` sets."""
    wakeup = wakeup or OutboxWakeup(enabled=settings.outbox_wakeup)

    async def run() -> None:
        own = http_client is None
        http = http_client or create_http_client(
            timeout=settings.http_timeout,
            credentials=service_credentials_hook(settings, caller="tasks", audience="audit"),
        )
        try:
            await OutboxRelay(settings, pool, http, wakeup=wakeup).run_forever()
        finally:
            if own:
                await http.aclose()

    work = [BackgroundWork("outbox-relay", run)]
    if listen_enabled(settings):
        work.append(listener_work(settings, wakeup))
    return work
