"""SQL of the outbox relay: claim the oldest batch, settle it, hold it while backing off, measure
and prune the backlog (see ``relay`` for the protocol)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

from .rules import fit_batch

Conn = psycopg.AsyncConnection[Any]
PRUNE_BATCH = 1000


async def claim_batch(
    conn: Conn, limit: int, lease: timedelta, max_bytes: int = 2**62
) -> list[dict[str, Any]]:
    """The oldest pending events (at most ``limit``, about ``max_bytes`` of JSON), claimed for
    ``lease``; [] when there are none or when another relay holds (or is claiming) older ones.
    Each row's ``payload`` is its JSON text, posted as is. Call inside a transaction.

    Every query here reads about ``limit`` rows whatever the backlog: the oldest pending event
    and "is a claim live?" come from indexes (``outbox_pending_idx``, ``outbox_claimed_idx``)."""
    await relaxed_commit(conn)
    cur = await conn.execute(
        "SELECT id, event_id, j.text AS payload, octet_length(j.text) AS size"
        " FROM tasks.outbox, LATERAL (SELECT payload::text AS text) AS j"
        " WHERE delivered_at IS NULL AND (claimed_until IS NULL OR claimed_until < now())"
        " ORDER BY id LIMIT %s FOR UPDATE OF outbox SKIP LOCKED",
        (limit,),
    )
    rows = await cur.fetchall()
    if not rows:
        return []
    cur = await conn.execute(
        "SELECT (SELECT id FROM tasks.outbox WHERE delivered_at IS NULL ORDER BY id LIMIT 1)"
        " AS oldest, EXISTS (SELECT 1 FROM tasks.outbox WHERE delivered_at IS NULL"
        " AND claimed_until IS NOT NULL AND claimed_until >= now()) AS claimed_elsewhere"
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


async def relaxed_commit(conn: Conn) -> None:
    """The relay's own bookkeeping (a claim, an acknowledgement) need not wait for the WAL
    flush: lost in a crash, a claim is claimed again and an acknowledgement turns into a
    re-post that the audit service answers "duplicate". Transaction-scoped (PgBouncer safe)."""
    await conn.execute("SET LOCAL synchronous_commit = off")


async def mark_delivered(conn: Conn, ids: list[int], set_aside: dict[int, str]) -> None:
    """Settle events: ``ids`` delivered; ``set_aside`` never deliverable, with the reason."""
    await relaxed_commit(conn)
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
    """Delete events delivered to audit ``older_than`` ago that every event consumer
    (``tasks.event_consumers``, issue 18) has read too."""
    cur = await conn.execute(
        "DELETE FROM tasks.outbox WHERE id IN (SELECT o.id FROM tasks.outbox o"
        " WHERE o.delivered_at < now() - %s AND NOT EXISTS (SELECT 1 FROM"
        " tasks.event_consumers c WHERE (c.last_txid, c.last_id) < (o.txid, o.id)) LIMIT %s)",
        (older_than, PRUNE_BATCH),
    )
    return cur.rowcount
