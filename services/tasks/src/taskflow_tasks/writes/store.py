"""SQL for Idempotency-Key records (one per caller and key, kept 24 hours)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import psycopg

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]


async def claim(
    conn: Conn,
    *,
    caller_worker_id: int,
    key: str,
    method: str,
    path: str,
    request_hash: str,
    now: datetime,
) -> bool:
    """Take the key for this request (``True``), or ``False`` when a live record exists.

    A concurrent request with the same key waits here until the first one commits or rolls
    back; a record older than 24 hours is taken over."""
    cur = await conn.execute(
        """
        INSERT INTO tasks.idempotency_keys AS k
            (caller_worker_id, key, method, path, request_hash, created_at)
        VALUES (%s, %s, %s, %s, %s, %s)
        ON CONFLICT (caller_worker_id, key) DO UPDATE
           SET method = EXCLUDED.method, path = EXCLUDED.path,
               request_hash = EXCLUDED.request_hash, status_code = NULL, response = NULL,
               created_at = EXCLUDED.created_at
         WHERE k.created_at < EXCLUDED.created_at - interval '24 hours'
        RETURNING 1
        """,
        (caller_worker_id, key, method, path, request_hash, now),
    )
    return await cur.fetchone() is not None


async def stored(conn: Conn, caller_worker_id: int, key: str) -> Row | None:
    cur = await conn.execute(
        "SELECT method, path, request_hash, status_code, response FROM tasks.idempotency_keys"
        " WHERE caller_worker_id = %s AND key = %s",
        (caller_worker_id, key),
    )
    return await cur.fetchone()


async def save_response(
    conn: Conn, caller_worker_id: int, key: str, status: int, response: dict[str, Any]
) -> None:
    await conn.execute(
        "UPDATE tasks.idempotency_keys SET status_code = %s, response = %s::jsonb"
        " WHERE caller_worker_id = %s AND key = %s",
        (status, orjson.dumps(response).decode(), caller_worker_id, key),
    )


async def purge_expired(conn: Conn, now: datetime) -> int:
    cur = await conn.execute(
        "DELETE FROM tasks.idempotency_keys WHERE created_at < %s - interval '24 hours'", (now,)
    )
    return cur.rowcount
