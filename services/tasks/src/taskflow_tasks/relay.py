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
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import psycopg_pool
import structlog
from taskflow_core.auth import service_credentials_hook
from taskflow_core.config import Settings
from taskflow_core.db import DATABASE_OUTAGE_ERRORS, transaction
from taskflow_core.http import create_http_client
from taskflow_core.service import BackgroundWork

log = structlog.get_logger("taskflow.outbox")

INGEST_PATH = "/internal/audit/events"
BATCH_SIZE = 100
BACKLOG_LOG_INTERVAL = 10.0
RETENTION = timedelta(days=7)
PRUNE_INTERVAL = 600.0
PRUNE_BATCH = 1000

Conn = psycopg.AsyncConnection[Any]


# -- the rules (pure) ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Backoff:
    """Exponential delays between failed deliveries: ``base``, doubling, up to ``cap``."""

    base: float
    cap: float
    jitter: float = 0.2

    @classmethod
    def for_interval(cls, interval: float) -> Backoff:
        """Starts at the polling interval; capped at 30 intervals, and never above 30 s."""
        base = max(0.05, interval)
        return cls(base=base, cap=max(base, min(30.0, 30 * base)))

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        if failures <= 0:
            return 0.0
        raw = min(self.cap, self.base * 2 ** (failures - 1))
        return raw * (1 - self.jitter + 2 * self.jitter * rand())


def fit_batch(rows: list[dict[str, Any]], max_bytes: int) -> list[dict[str, Any]]:
    """The longest prefix of ``rows`` whose payloads (``size`` bytes each) fit in ``max_bytes``,
    and always at least the first row (an oversized one is dealt with on its own)."""
    kept: list[dict[str, Any]] = []
    total = 0
    for row in rows:
        if kept and total + int(row["size"]) > max_bytes:
            break
        kept.append(row)
        total += int(row["size"])
    return kept


@dataclass(frozen=True)
class Acknowledgement:
    """The audit service's answer for a batch: event ids to mark delivered, and why some were
    refused (a malformed event is never retried; it would block every event behind it)."""

    delivered: list[int]
    rejected: dict[int, str]
    missing: list[int]


def read_acknowledgement(batch: list[dict[str, Any]], body: Any) -> Acknowledgement:
    """Match the answer's per-event results to the outbox rows of ``batch`` by event id."""
    results = body.get("results") if isinstance(body, dict) else None
    by_event: dict[str, dict[str, Any]] = {}
    for result in results if isinstance(results, list) else []:
        if isinstance(result, dict) and result.get("event_id") is not None:
            by_event[str(result["event_id"])] = result
    delivered: list[int] = []
    rejected: dict[int, str] = {}
    missing: list[int] = []
    for row in batch:
        result = by_event.get(str(row["event_id"]))
        status = result.get("status") if result else None
        if status in ("stored", "duplicate"):
            delivered.append(row["id"])
        elif status == "rejected" and result is not None:
            reason = str(result.get("reason") or "no reason given")
            rejected[row["id"]] = f"rejected by the audit service: {reason}"
        else:
            missing.append(row["id"])
    return Acknowledgement(delivered, rejected, missing)


# -- SQL ----------------------------------------------------------------------------------------
async def claim_batch(
    conn: Conn, limit: int, lease: timedelta, max_bytes: int = 2**62
) -> list[dict[str, Any]]:
    """The oldest pending events (at most ``limit``, about ``max_bytes`` of JSON), claimed for
    ``lease``; [] when there are none or when another relay holds (or is claiming) older ones.
    Call inside a transaction."""
    cur = await conn.execute(
        "SELECT id, event_id, payload, octet_length(payload::text) AS size FROM tasks.outbox"
        " WHERE delivered_at IS NULL AND (claimed_until IS NULL OR claimed_until < now())"
        " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
        (limit,),
    )
    rows = await cur.fetchall()
    if not rows:
        return []
    cur = await conn.execute(
        "SELECT min(id) AS oldest,"
        " bool_or(claimed_until >= now()) AS claimed_elsewhere"
        " FROM tasks.outbox WHERE delivered_at IS NULL"
    )
    state = await cur.fetchone()
    if state is None or state["claimed_elsewhere"] or state["oldest"] != rows[0]["id"]:
        return []
    rows = fit_batch(rows, max_bytes)
    await conn.execute(
        "UPDATE tasks.outbox SET claimed_until = now() + %s, attempts = attempts + 1"
        " WHERE id = ANY(%s)",
        (lease, [row["id"] for row in rows]),
    )
    return list(rows)


async def mark_delivered(conn: Conn, ids: list[int], set_aside: dict[int, str]) -> None:
    """Settle events: ``ids`` delivered; ``set_aside`` never deliverable, with the reason."""
    if ids:
        await conn.execute(
            "UPDATE tasks.outbox SET delivered_at = now(), claimed_until = NULL, last_error = NULL"
            " WHERE id = ANY(%s) AND delivered_at IS NULL",
            (ids,),
        )
    for outbox_id, reason in set_aside.items():
        await conn.execute(
            "UPDATE tasks.outbox SET delivered_at = now(), claimed_until = NULL, last_error = %s"
            " WHERE id = %s AND delivered_at IS NULL",
            (reason[:2000], outbox_id),
        )


async def hold_claim(conn: Conn, ids: list[int], until: timedelta, error: str) -> None:
    """Keep the batch claimed while backing off (so no replica hammers a failing service)."""
    await conn.execute(
        "UPDATE tasks.outbox SET claimed_until = now() + %s, last_error = %s"
        " WHERE id = ANY(%s) AND delivered_at IS NULL",
        (until, error[:2000], ids),
    )


async def backlog(conn: Conn) -> dict[str, Any]:
    cur = await conn.execute(
        "SELECT count(*) AS pending, extract(epoch FROM now() - min(created_at)) AS oldest_age"
        " FROM tasks.outbox WHERE delivered_at IS NULL"
    )
    row = await cur.fetchone()
    pending = int(row["pending"]) if row else 0
    age = row["oldest_age"] if row else None
    return {"backlog": pending, "oldest_age_s": None if age is None else round(float(age), 1)}


async def prune_delivered(conn: Conn, older_than: timedelta) -> int:
    cur = await conn.execute(
        "DELETE FROM tasks.outbox WHERE id IN (SELECT id FROM tasks.outbox"
        " WHERE delivered_at < now() - %s LIMIT %s)",
        (older_than, PRUNE_BATCH),
    )
    return cur.rowcount


# -- the loop ----------------------------------------------------------------------------------
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
    ) -> None:
        self.pool = pool
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
        while True:
            try:
                settled = await self.deliver_once()
            except DATABASE_OUTAGE_ERRORS as exc:
                await self._back_off(f"database unavailable: {type(exc).__name__}")
                continue
            if settled < self.batch_size:
                await self._maybe_prune()
                await asyncio.sleep(self.interval)

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
        try:
            response = await self.http.post(
                self.url, json={"events": [row["payload"] for row in batch]}
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
) -> BackgroundWork:
    """The relay as the tasks app's background work.

    ``http_client`` must carry the tasks service's credential for the audit service; by default
    the relay makes that one client itself (and closes it when the app stops)."""

    async def run() -> None:
        own = http_client is None
        http = http_client or create_http_client(
            timeout=settings.http_timeout,
            credentials=service_credentials_hook(settings, caller="tasks", audience="audit"),
        )
        try:
            await OutboxRelay(settings, pool, http).run_forever()
        finally:
            if own:
                await http.aclose()

    return BackgroundWork("outbox-relay", run)
