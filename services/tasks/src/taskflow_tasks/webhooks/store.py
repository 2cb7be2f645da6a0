"""SQL of webhooks and their deliveries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]

WEBHOOK_COLUMNS = (
    "id, project_id, url, events, description, active, disabled_reason, created_at, updated_at"
)
DELIVERY_COLUMNS = (
    "id, webhook_id, event_id, event_type, message_id, state, attempts,"
    " last_status AS last_status_code, last_error, next_attempt_at, created_at, delivered_at"
)


# -- webhooks ---------------------------------------------------------------------------------
async def create(conn: Conn, values: Row) -> Row:
    cur = await conn.execute(
        "INSERT INTO tasks.webhooks (project_id, url, events, description, secret,"
        " created_by_id, created_at, updated_at) VALUES (%(project_id)s, %(url)s, %(events)s,"
        " %(description)s, %(secret)s, %(created_by_id)s, %(now)s, %(now)s)"
        f" RETURNING {WEBHOOK_COLUMNS}, secret",
        values,
    )
    row = await cur.fetchone()
    assert row is not None
    return dict(row)


async def list_for(conn: Conn, project_id: int) -> list[Row]:
    cur = await conn.execute(
        f"SELECT {WEBHOOK_COLUMNS} FROM tasks.webhooks WHERE project_id = %s ORDER BY id",
        (project_id,),
    )
    return list(await cur.fetchall())


async def get(conn: Conn, project_id: int, webhook_id: int) -> Row | None:
    cur = await conn.execute(
        f"SELECT {WEBHOOK_COLUMNS} FROM tasks.webhooks WHERE project_id = %s AND id = %s",
        (project_id, webhook_id),
    )
    return await cur.fetchone()


async def update(
    conn: Conn, project_id: int, webhook_id: int, changes: Row, now: datetime
) -> Row | None:
    sets = ", ".join(f"{column} = %({column})s" for column in changes)
    extra = ""
    if changes.get("active") is True:  # re-enabled: a fresh start
        extra = ", disabled_reason = NULL, failing_since = NULL"
    cur = await conn.execute(
        f"UPDATE tasks.webhooks SET {sets}{extra}, updated_at = %(_now)s"
        f" WHERE project_id = %(_pid)s AND id = %(_id)s RETURNING {WEBHOOK_COLUMNS}",
        {**changes, "_now": now, "_pid": project_id, "_id": webhook_id},
    )
    return await cur.fetchone()


async def delete(conn: Conn, project_id: int, webhook_id: int) -> bool:
    cur = await conn.execute(
        "DELETE FROM tasks.webhooks WHERE project_id = %s AND id = %s", (project_id, webhook_id)
    )
    return cur.rowcount > 0


async def active_for(conn: Conn, project_ids: Sequence[int]) -> list[Row]:
    cur = await conn.execute(
        "SELECT id, project_id, events FROM tasks.webhooks"
        " WHERE active AND project_id = ANY(%s) ORDER BY id",
        (list(project_ids),),
    )
    return list(await cur.fetchall())


async def any_active(conn: Conn) -> bool:
    cur = await conn.execute("SELECT EXISTS (SELECT 1 FROM tasks.webhooks WHERE active) AS any")
    row = await cur.fetchone()
    return bool(row and row["any"])


async def disable(conn: Conn, webhook_id: int, reason: str) -> Row | None:
    cur = await conn.execute(
        "UPDATE tasks.webhooks SET active = false, disabled_reason = %s, updated_at = now()"
        " WHERE id = %s AND active RETURNING id, project_id, url",
        (reason, webhook_id),
    )
    return await cur.fetchone()


# -- deliveries -------------------------------------------------------------------------------
async def add_deliveries(conn: Conn, rows: Sequence[Row]) -> None:
    if not rows:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO tasks.webhook_deliveries (webhook_id, event_id, event_type, order_key,"
            " body, message_id, committed_at) VALUES (%(webhook_id)s, %(event_id)s,"
            " %(event_type)s, %(order_key)s, %(body)s, %(message_id)s,"
            " %(committed_at)s::timestamptz)"
            " ON CONFLICT DO NOTHING",
            [{**row, "body": Jsonb(row["body"])} for row in rows],
        )


async def list_deliveries(conn: Conn, webhook_id: int, limit: int, offset: int) -> list[Row]:
    cur = await conn.execute(
        f"SELECT {DELIVERY_COLUMNS} FROM tasks.webhook_deliveries WHERE webhook_id = %s"
        " ORDER BY id DESC LIMIT %s OFFSET %s",
        (webhook_id, limit, offset),
    )
    return list(await cur.fetchall())


async def redeliver(conn: Conn, webhook_id: int, delivery_id: int, message_id: str) -> Row | None:
    """A new delivery of the same event (a new webhook-id: it is a new message)."""
    cur = await conn.execute(
        "INSERT INTO tasks.webhook_deliveries (webhook_id, event_id, event_type, order_key, body,"
        " message_id, committed_at) SELECT webhook_id, event_id, event_type, order_key, body,"
        " %s, now() FROM tasks.webhook_deliveries WHERE webhook_id = %s AND id = %s"
        f" RETURNING {DELIVERY_COLUMNS}",
        (message_id, webhook_id, delivery_id),
    )
    return await cur.fetchone()


async def claim(
    conn: Conn, limit: int, room: Mapping[int, int], per_endpoint: int, lease: timedelta
) -> list[Row]:
    """Up to ``limit`` due deliveries, oldest first, each the oldest unsettled one of its
    (endpoint, task) (so one task's events reach an endpoint in order), at most ``room[id]``
    (default ``per_endpoint``) for an endpoint, claimed for ``lease``. In a transaction."""
    busy = [hook for hook, free in room.items() if free <= 0]
    # Walk the queue index in id order and stop at ``limit``, whatever the statistics say. A
    # queue fills faster than autoanalyze runs: planned from stale statistics (or, prepared,
    # once for all while the table was empty), the claim read every pending row, 60-80 ms a
    # claim at 27,000 pending, and a backlog drained ever slower the larger it was.
    await conn.execute(
        "SET LOCAL plan_cache_mode = force_custom_plan; SET LOCAL enable_bitmapscan = off;"
        " SET LOCAL enable_sort = off",
        prepare=False,
    )
    cur = await conn.execute(
        "SELECT d.id, d.webhook_id FROM tasks.webhook_deliveries d"
        " JOIN tasks.webhooks w ON w.id = d.webhook_id AND w.active"
        " WHERE d.state = 'pending' AND d.next_attempt_at <= now()"
        " AND (d.claimed_until IS NULL OR d.claimed_until < now())"
        " AND d.webhook_id <> ALL(%s)"
        " AND NOT EXISTS (SELECT 1 FROM tasks.webhook_deliveries e"
        " WHERE e.webhook_id = d.webhook_id AND e.order_key = d.order_key"
        " AND e.state = 'pending' AND e.id < d.id)"
        " ORDER BY d.id LIMIT %s FOR UPDATE OF d SKIP LOCKED",
        (busy, limit),
    )
    ids, taken = [], dict(room)
    for row in await cur.fetchall():
        hook = row["webhook_id"]
        if taken.get(hook, per_endpoint) > 0:  # the others stay unclaimed for the next round
            taken[hook] = taken.get(hook, per_endpoint) - 1
            ids.append(row["id"])
    if not ids:
        return []
    cur = await conn.execute(
        "UPDATE tasks.webhook_deliveries d SET claimed_until = now() + %s FROM tasks.webhooks w"
        " WHERE d.id = ANY(%s) AND w.id = d.webhook_id RETURNING d.id, d.webhook_id,"
        " d.body, d.message_id, d.attempts, d.committed_at, w.url, w.secret, w.failing_since",
        (lease, ids),
    )
    return sorted(await cur.fetchall(), key=lambda row: row["id"])


async def settle_successes(conn: Conn, answered: Sequence[tuple[Row, int]]) -> None:
    """Deliveries answered with a 2xx (delivery, status): delivered; their endpoints healthy."""
    await conn.execute(
        "UPDATE tasks.webhook_deliveries d SET state = 'delivered', attempts = d.attempts + 1,"
        " last_status = a.status, last_error = NULL, delivered_at = now(), claimed_until = NULL"
        " FROM unnest(%s::bigint[], %s::int[]) AS a (id, status) WHERE d.id = a.id",
        ([d["id"] for d, _ in answered], [status for _, status in answered]),
    )
    await conn.execute(
        "UPDATE tasks.webhooks SET failing_since = NULL"
        " WHERE id = ANY(%s) AND failing_since IS NOT NULL",
        (sorted({d["webhook_id"] for d, _ in answered}),),
    )


async def settle_failure(
    conn: Conn, delivery: Row, status: int | None, error: str, retry_in: float | None
) -> datetime | None:
    """Record a failed attempt; retried in ``retry_in`` s (None: failed for good). Returns
    when the endpoint's current run of failures began."""
    if retry_in is None:
        await conn.execute(
            "UPDATE tasks.webhook_deliveries SET state = 'failed', attempts = attempts + 1,"
            " last_status = %s, last_error = %s, claimed_until = NULL WHERE id = %s",
            (status, error[:2000], delivery["id"]),
        )
    else:
        await conn.execute(
            "UPDATE tasks.webhook_deliveries SET attempts = attempts + 1, last_status = %s,"
            " last_error = %s, next_attempt_at = now() + %s, claimed_until = NULL WHERE id = %s",
            (status, error[:2000], timedelta(seconds=retry_in), delivery["id"]),
        )
    cur = await conn.execute(
        "UPDATE tasks.webhooks SET failing_since = coalesce(failing_since, now())"
        " WHERE id = %s RETURNING failing_since",
        (delivery["webhook_id"],),
    )
    row = await cur.fetchone()
    return row["failing_since"] if row else None
