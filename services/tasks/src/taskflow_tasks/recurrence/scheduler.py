"""The due-date spawner of recurring tasks (trigger ``on_due_date``/``both``).

It is a background loop inside the tasks service. Each round claims due rows
in small batches, each with ``FOR UPDATE SKIP LOCKED`` in its own transaction, so any number of
replicas can run it at once: each row is handled by exactly one of them, and a replica that
dies mid-round just releases its rows to the others. A round does bounded work and yields to
the event loop between batches, and the next occurrence is computed arithmetically (one step
however far behind the due date is), so the loop never holds the service's event loop.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import psycopg
import psycopg_pool
import structlog
from taskflow_core.config import Settings
from taskflow_core.db import transaction
from taskflow_core.service import BackgroundWork

from ..outbox.events import Actor, Author
from ..outbox.wakeup import OutboxWakeup
from . import store
from .spawning import spawn_next_occurrence

log = structlog.get_logger("taskflow.scheduler")

# Bounded work: a round handles at most ROUND_LIMIT tasks, CLAIM_BATCH per transaction, so
# row locks are held briefly and other requests run between transactions.
ROUND_LIMIT = 100
CLAIM_BATCH = 10


async def spawn_due(
    pool: psycopg_pool.AsyncConnectionPool,
    now: datetime,
    *,
    limit: int = ROUND_LIMIT,
    batch: int = CLAIM_BATCH,
) -> int:
    """One round: spawn the successor of up to ``limit`` due recurring tasks this replica can
    claim, ``batch`` per transaction, yielding to the event loop between transactions so
    requests keep being served. Returns how many source tasks it handled."""
    handled = 0
    while handled < limit:
        async with transaction(pool) as conn:
            rows = await store.claim_due_recurring(conn, now, min(batch, limit - handled))
            for row in rows:
                # The system acts on behalf of the task's creator, as the old job did.
                system = Actor(worker_id=row["created_by_id"], handle=None, actor_type="system")
                author = Author(row["tenant_id"], system)
                await spawn_next_occurrence(conn, row, author, now, when_due=True)
        handled += len(rows)
        await asyncio.sleep(0)
        if len(rows) < batch:
            break
    return handled


class DueDateSpawner:
    """The background loop: a round every ``settings.scheduler_interval`` seconds (the next
    one at once while rounds come back full). A round that spawned wakes the outbox's readers,
    as an answered write does: its events go to audit, webhooks and notifications at once."""

    def __init__(
        self, pool: psycopg_pool.AsyncConnectionPool, settings: Settings, wakeup: OutboxWakeup
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.wakeup = wakeup

    async def run(self) -> None:
        while True:
            handled = 0
            try:
                handled = await spawn_due(self.pool, self.settings.clock())
                if handled:
                    self.wakeup.wake()
                    log.info("recurring_spawned", count=handled)
            except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
                log.warning("scheduler_db_unavailable", error=type(exc).__name__)
            if handled < ROUND_LIMIT:
                await asyncio.sleep(self.settings.scheduler_interval)

    def background_work(self) -> BackgroundWork:
        return BackgroundWork("recurring-due-date-spawner", self.run)


def due_date_spawner(
    pool: psycopg_pool.AsyncConnectionPool, settings: Settings, wakeup: OutboxWakeup
) -> BackgroundWork:
    """The ``BackgroundWork`` to add to the tasks service's lifecycle."""
    return DueDateSpawner(pool, settings, wakeup).background_work()
