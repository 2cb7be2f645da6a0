"""SQL of the importer's own bookkeeping (migration 0009): the ledger of what an import of one
file into one tenant has written, the run record, and the lock that serialises two runs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]
# A ledger row: the planned row's key, its id in the database, its event id, created by us.
Entry = tuple[str, int | None, uuid.UUID | None, bool]


async def exists(conn: Conn) -> bool:
    cur = await conn.execute("SELECT to_regclass('tasks.import_ledger') IS NOT NULL AS ok")
    row = await cur.fetchone()
    return bool(row and row["ok"])


async def lock(conn: Conn, tenant: str, fingerprint: str) -> None:
    """Serialise the chunks of two runs of one import (transaction-scoped: PgBouncer-safe)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
        (f"taskflow:import:{tenant}:{fingerprint}",),
    )


async def recorded(
    conn: Conn, tenant: str, fingerprint: str, keys: Sequence[str] | None = None
) -> list[Row]:
    """``(entity_key, entity_id)`` of the import's ledger (only ``keys``, when given)."""
    cur = await conn.execute(
        "SELECT entity_key, entity_id FROM tasks.import_ledger"
        " WHERE tenant_id = %s AND source_fingerprint = %s"
        " AND (%s::text[] IS NULL OR entity_key = ANY(%s::text[]))",
        (tenant, fingerprint, keys, keys),
    )
    return await cur.fetchall()


async def record(
    conn: Conn, tenant: str, fingerprint: str, entries: Sequence[Entry], now: datetime
) -> None:
    if not entries:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO tasks.import_ledger (tenant_id, source_fingerprint, entity_key,"
            " entity_id, event_id, created, recorded_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            [
                (tenant, fingerprint, key, eid, ev, created, now)
                for key, eid, ev, created in entries
            ],
        )


async def completed_at(conn: Conn, tenant: str, fingerprint: str) -> datetime | None:
    """When a run of this import last finished (``None``: never)."""
    cur = await conn.execute(
        "SELECT completed_at FROM tasks.import_runs"
        " WHERE tenant_id = %s AND source_fingerprint = %s",
        (tenant, fingerprint),
    )
    row = await cur.fetchone()
    return row["completed_at"] if row else None


async def start_run(
    conn: Conn,
    tenant: str,
    fingerprint: str,
    *,
    source_path: str,
    owner_sub: str,
    local_time: str,
    now: datetime,
) -> None:
    await conn.execute(
        """
        INSERT INTO tasks.import_runs AS r (tenant_id, source_fingerprint, source_path,
                                            owner_id, local_time, started_at)
        VALUES (%s, %s, %s, %s, %s, %s)
        ON CONFLICT (tenant_id, source_fingerprint) DO UPDATE SET runs = r.runs + 1
        """,
        (tenant, fingerprint, source_path, owner_sub, local_time, now),
    )


async def finish_run(conn: Conn, tenant: str, fingerprint: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE tasks.import_runs SET completed_at = COALESCE(completed_at, %s)"
        " WHERE tenant_id = %s AND source_fingerprint = %s",
        (now, tenant, fingerprint),
    )


async def live_projects(conn: Conn, tenant: str, slugs: list[str]) -> list[Row]:
    """The live projects of ``tenant`` with one of ``slugs``, with when an import created each
    (``imported_at`` NULL: not created by any import)."""
    cur = await conn.execute(
        """
        SELECT p.slug, min(l.recorded_at) AS imported_at
        FROM tasks.projects p
        LEFT JOIN tasks.import_ledger l
          ON l.tenant_id = p.tenant_id AND l.entity_key = 'project:' || p.slug
         AND l.entity_id = p.id AND l.created
        WHERE p.tenant_id = %s AND p.deleted_at IS NULL AND p.slug = ANY(%s)
        GROUP BY p.slug ORDER BY p.slug
        """,
        (tenant, slugs),
    )
    return await cur.fetchall()
