"""SQL of the event consumers: each reads the outbox after its own cursor, in (txid, id) order,
only rows whose writing transaction is older than every running one (see migration 0016), and
moves its cursor when it has handled them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import psycopg

from .rules import Facts

Conn = psycopg.AsyncConnection[Any]
Cursor = tuple[int, int]  # (txid, id) of the last row consumed


# What a consumer reads of each row: the whole payload, or only what says which task changed
# how (the reminders consumer; decoding every payload was most of its cost).
PAYLOAD = "o.payload"
CHANGE_KEYS = (
    "jsonb_build_object('entity_type', o.payload->'entity_type', 'entity_id',"
    " o.payload->'entity_id', 'action', o.payload->'action') AS payload"
)


async def read_after(
    conn: Conn, name: str, limit: int, payload: str = PAYLOAD
) -> list[dict[str, Any]]:
    """The next ``limit`` outbox rows after consumer ``name``'s cursor that are final: their
    transaction is older than the oldest one still running, so no row can still appear
    before them. The cursor is read first and passed as a constant, so the outbox is
    range-scanned from it (joined in, it was a filter over every row of the outbox)."""
    cur = await conn.execute(
        "SELECT last_txid::text::bigint AS txid, last_id FROM tasks.event_consumers"
        " WHERE name = %s",
        (name,),
    )
    at = await cur.fetchone()
    if at is None:
        return []
    cur = await conn.execute(
        f"SELECT o.id, o.txid::text::bigint AS txid, {payload} FROM tasks.outbox o"
        " WHERE (o.txid, o.id) > (%(txid)s::text::xid8, %(id)s)"
        " AND o.txid < pg_snapshot_xmin(pg_current_snapshot())"
        " ORDER BY o.txid, o.id LIMIT %(limit)s",
        {"txid": str(at["txid"]), "id": at["last_id"], "limit": limit},
    )
    return list(await cur.fetchall())


async def lock_consumer(conn: Conn, name: str) -> bool:
    """Inside a transaction: whether this replica is consumer ``name`` for this transaction
    (an advisory lock: it takes no transaction id, so it does not hold back the snapshot)."""
    cur = await conn.execute(
        "SELECT pg_try_advisory_xact_lock(hashtext('taskflow-events:' || %s)) AS mine", (name,)
    )
    row = await cur.fetchone()
    return bool(row and row["mine"])


async def next_rows(
    conn: Conn, name: str, limit: int, payload: str = PAYLOAD
) -> list[dict[str, Any]]:
    """Inside a transaction: consumer ``name``'s next outbox rows (``read_after``), or [] when
    another replica is that consumer now (``lock_consumer``)."""
    if not await lock_consumer(conn, name):
        return []
    return await read_after(conn, name, limit, payload)


async def follow(conn: Conn, name: str) -> None:
    """Inside a transaction, unless another replica is consumer ``name`` now
    (``lock_consumer``): move its cursor past every final row without reading them (a consumer
    with nobody to publish to just keeps up, so the relay's prune is not held back)."""
    if not await lock_consumer(conn, name):
        return
    await conn.execute(
        "UPDATE tasks.event_consumers c SET last_txid = o.txid, last_id = o.id,"
        " updated_at = now() FROM (SELECT txid, id FROM tasks.outbox"
        " WHERE txid < pg_snapshot_xmin(pg_current_snapshot())"
        " ORDER BY txid DESC, id DESC LIMIT 1) o"
        " WHERE c.name = %s AND (c.last_txid, c.last_id) < (o.txid, o.id)",
        (name,),
    )


async def lease(conn: Conn, name: str, until: timedelta) -> bool:
    """Take consumer ``name``'s lease (for a consumer that calls out over HTTP)."""
    cur = await conn.execute(
        "UPDATE tasks.event_consumers SET leased_until = now() + %s"
        " WHERE name = %s AND (leased_until IS NULL OR leased_until < now()) RETURNING name",
        (until, name),
    )
    return await cur.fetchone() is not None


async def advance(conn: Conn, name: str, to: Cursor | None, *, release: bool = False) -> None:
    """Move consumer ``name``'s cursor to ``to`` (never backwards); release its lease."""
    if to is not None:
        await conn.execute(
            "UPDATE tasks.event_consumers SET last_txid = %s::text::xid8, last_id = %s,"
            " updated_at = now() WHERE name = %s"
            " AND (last_txid, last_id) < (%s::text::xid8, %s)",
            (str(to[0]), to[1], name, str(to[0]), to[1]),
        )
    if release:
        await conn.execute(
            "UPDATE tasks.event_consumers SET leased_until = NULL WHERE name = %s", (name,)
        )


async def pending(conn: Conn) -> dict[str, int]:
    """Outbox rows each consumer has not handled yet (final or not), each counted from its
    cursor as a constant (a range scan of the outbox index)."""
    cur = await conn.execute(
        "SELECT name, last_txid::text AS txid, last_id FROM tasks.event_consumers ORDER BY name"
    )
    found: dict[str, int] = {}
    for consumer in await cur.fetchall():
        counted = await conn.execute(
            "SELECT count(*) AS n FROM tasks.outbox WHERE (txid, id) > (%s::xid8, %s)",
            (consumer["txid"], consumer["last_id"]),
        )
        row = await counted.fetchone()
        found[consumer["name"]] = int(row["n"]) if row else 0
    return found


def _ref(user_id: str | None, handle: str | None) -> str | None:
    return user_id or handle


async def facts_for(conn: Conn, payloads: Iterable[Mapping[str, Any]]) -> dict[str, Facts]:
    """The :class:`Facts` of each task event in ``payloads``, by event id, in two queries."""
    task_rows = [p for p in payloads if p.get("entity_type") == "task" and p.get("entity_id")]
    if not task_rows:
        return {}
    task_ids = sorted({int(p["entity_id"]) for p in task_rows})
    cur = await conn.execute(
        "SELECT t.*, a.user_id AS a_sub, a.handle AS a_handle,"
        " c.user_id AS c_sub, c.handle AS c_handle"
        " FROM tasks.tasks t LEFT JOIN tasks.workers a ON a.id = t.assignee_id"
        " LEFT JOIN tasks.workers c ON c.id = t.created_by_id WHERE t.id = ANY(%s)",
        (task_ids,),
    )
    tasks = {row["id"]: row for row in await cur.fetchall()}
    worker_ids: set[int] = set()
    for p in task_rows:
        if p.get("actor_id") is not None:
            worker_ids.add(int(p["actor_id"]))
        after = (p.get("details") or {}).get("after")
        if p.get("action") == "assigned" and isinstance(after, int):
            worker_ids.add(after)
    cur = await conn.execute(
        "SELECT id, user_id, handle, name FROM tasks.workers WHERE id = ANY(%s)",
        (sorted(worker_ids),),
    )
    workers = {row["id"]: row for row in await cur.fetchall()}
    people = {wid: _ref(w["user_id"], w["handle"]) or "" for wid, w in workers.items()}
    found: dict[str, Facts] = {}
    for p in task_rows:
        task = tasks.get(int(p["entity_id"]))
        actor = workers.get(p["actor_id"]) if p.get("actor_id") is not None else None
        found[str(p["event_id"])] = Facts(
            task=task,
            actor_ref=_ref(actor["user_id"], actor["handle"]) if actor else p.get("actor_handle"),
            actor_name=actor["name"] if actor else p.get("actor_handle"),
            assignee_ref=_ref(task["a_sub"], task["a_handle"]) if task else None,
            creator_ref=_ref(task["c_sub"], task["c_handle"]) if task else None,
            people=people,
        )
    return found
