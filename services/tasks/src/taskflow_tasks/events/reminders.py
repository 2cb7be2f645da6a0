"""``reminder.due``: the reference's timing rules (reference-api.md §5.3), its gaps fixed.

- Planned for a task with a due date and a human assignee, when the ``reminders`` outbox
  consumer sees a change of the task: re-planned when the due date or the assignee changes,
  dropped on completion (status or approval) and deletion.
- When, from the moment it is planned: due in more than 24 h → 24 h before (``hours_until_due``
  24); 1-24 h → 1 h before (1); 5-60 min → 5 min before (0); 1-5 min → 30 s before (-1);
  less than a minute → none.
- Sent once per due date: sending writes an outbox row (``reminder_due``) that the event
  consumers publish; it is marked delivered at once, so the audit relay never sees it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
import psycopg_pool
import structlog
from taskflow_core.db import DATABASE_OUTAGE_ERRORS, transaction
from taskflow_core.service import BackgroundWork

from ..outbox.wakeup import OutboxWakeup
from . import store
from .config import EventSettings

log = structlog.get_logger("taskflow.events")

Conn = psycopg.AsyncConnection[Any]
NAME = "reminders"
BATCH = 500
FIRE_BATCH = 100

_BRACKETS = (
    (timedelta(hours=24), timedelta(hours=24), 24),
    (timedelta(hours=1), timedelta(hours=1), 1),
    (timedelta(minutes=5), timedelta(minutes=5), 0),
    (timedelta(minutes=1), timedelta(seconds=30), -1),
)


def plan(due: datetime, now: datetime) -> tuple[datetime, int] | None:
    """When to remind of ``due`` seen at ``now``, and the ``hours_until_due`` to announce."""
    left = due - now
    for more_than, before, hours in _BRACKETS:
        if left > more_than:
            return due - before, hours
    return None


async def replan(conn: Conn, task_ids: list[int], now: datetime) -> None:
    """Bring the reminders of ``task_ids`` in line with the tasks as they are now."""
    cur = await conn.execute(
        "SELECT t.id, t.due_date, r.due_date AS planned_due, r.sent_for"
        " FROM tasks.tasks t JOIN tasks.workers w ON w.id = t.assignee_id AND w.type = 'human'"
        " LEFT JOIN tasks.task_reminders r ON r.task_id = t.id"
        " WHERE t.id = ANY(%s) AND t.due_date IS NOT NULL AND t.status <> 'completed'",
        (task_ids,),
    )
    keep: list[int] = []
    for row in await cur.fetchall():
        if row["planned_due"] == row["due_date"]:
            keep.append(row["id"])  # same due date: planned (or sent) already
            continue
        when = plan(row["due_date"], now)
        if when is None:
            continue
        keep.append(row["id"])
        await conn.execute(
            "INSERT INTO tasks.task_reminders (task_id, due_date, fire_at, hours_until_due)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (task_id) DO UPDATE SET due_date ="
            " excluded.due_date, fire_at = excluded.fire_at, hours_until_due ="
            " excluded.hours_until_due, sent_for = NULL",
            (row["id"], row["due_date"], when[0], when[1]),
        )
    dropped = sorted(set(task_ids) - set(keep))
    if dropped:
        await conn.execute("DELETE FROM tasks.task_reminders WHERE task_id = ANY(%s)", (dropped,))


async def consume_once(pool: psycopg_pool.AsyncConnectionPool, now: datetime) -> int:
    """Re-plan the tasks that the next outbox rows touched; the number of rows handled."""
    async with transaction(pool) as conn:
        rows = await store.next_rows(conn, NAME, BATCH, store.CHANGE_KEYS)
        if not rows:
            return 0
        touched = {
            int(r["payload"]["entity_id"])
            for r in rows
            if r["payload"].get("entity_type") == "task"
            and r["payload"].get("entity_id") is not None
            and r["payload"].get("action") != "reminder_due"
        }
        if touched:
            await replan(conn, sorted(touched), now)
        last = rows[-1]
        await store.advance(conn, NAME, (int(last["txid"]), int(last["id"])))
    return len(rows)


async def fire_due(pool: psycopg_pool.AsyncConnectionPool, now: datetime) -> int:
    """Send the reminders whose time has come: one outbox row each, once per due date."""
    async with transaction(pool) as conn:
        cur = await conn.execute(
            "SELECT r.task_id, r.due_date, r.hours_until_due, t.project_id, p.tenant_id"
            " FROM tasks.task_reminders r JOIN tasks.tasks t ON t.id = r.task_id"
            " JOIN tasks.projects p ON p.id = t.project_id"
            " WHERE r.sent_for IS NULL AND r.fire_at <= %s AND t.due_date = r.due_date"
            " AND t.status <> 'completed' ORDER BY r.fire_at LIMIT %s"
            " FOR UPDATE OF r SKIP LOCKED",
            (now, FIRE_BATCH),
        )
        due = await cur.fetchall()
        for row in due:
            event_id = uuid.uuid4()
            payload = {
                "event_id": str(event_id),
                "tenant_id": row["tenant_id"],
                "project_id": row["project_id"],
                "entity_type": "task",
                "entity_id": row["task_id"],
                "action": "reminder_due",
                "actor_id": None,
                "actor_handle": None,
                "actor_type": "system",
                "details": {
                    "due_at": row["due_date"].isoformat(),
                    "hours_until_due": row["hours_until_due"],
                },
                "created_at": now.isoformat(),
            }
            await conn.execute(
                "INSERT INTO tasks.outbox (event_id, payload, created_at, delivered_at,"
                " last_error) VALUES (%s, %s::jsonb, %s, now(), 'not an audit event')",
                (event_id, orjson.dumps(payload).decode(), now),
            )
            await conn.execute(
                "UPDATE tasks.task_reminders SET sent_for = due_date WHERE task_id = %s",
                (row["task_id"],),
            )
    return len(due)


def reminder_work(
    settings: EventSettings,
    pool: psycopg_pool.AsyncConnectionPool,
    clock: Callable[[], datetime],
    wakeup: OutboxWakeup,
) -> BackgroundWork:
    """Planning and sending reminders as background work of the tasks app (a reminder sent
    wakes the consumers that publish it)."""

    async def run() -> None:
        while True:
            try:
                handled = await consume_once(pool, clock())
                if await fire_due(pool, clock()):
                    wakeup.wake()
            except DATABASE_OUTAGE_ERRORS as exc:
                log.warning("reminders_database_unavailable", error=type(exc).__name__)
                handled = 0
            if handled < BATCH:
                await asyncio.sleep(settings.poll_interval)

    return BackgroundWork("reminders", run)
