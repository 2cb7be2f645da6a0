"""SQL for the persisted JWKS snapshot (schema ``auth``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg_pool
from psycopg.types.json import Jsonb
from taskflow_core.db import transaction


@dataclass(frozen=True)
class JwksSnapshot:
    key_set: dict[str, Any]
    fetched_at: datetime


class JwksSnapshotStore:
    def __init__(self, pool: psycopg_pool.AsyncConnectionPool) -> None:
        self.pool = pool

    async def load(self, jwks_url: str) -> JwksSnapshot | None:
        async with transaction(self.pool) as conn:
            cur = await conn.execute(
                "SELECT key_set, fetched_at FROM auth.jwks_snapshot WHERE jwks_url = %s",
                (jwks_url,),
            )
            row = await cur.fetchone()
        return None if row is None else JwksSnapshot(row["key_set"], row["fetched_at"])

    async def save(self, jwks_url: str, key_set: dict[str, Any], fetched_at: datetime) -> None:
        """Keep the newest snapshot only (replicas may save concurrently, in any order)."""
        async with transaction(self.pool) as conn:
            await conn.execute(
                "INSERT INTO auth.jwks_snapshot (jwks_url, key_set, fetched_at)"
                " VALUES (%s, %s, %s)"
                " ON CONFLICT (jwks_url) DO UPDATE"
                " SET key_set = EXCLUDED.key_set, fetched_at = EXCLUDED.fetched_at"
                " WHERE auth.jwks_snapshot.fetched_at < EXCLUDED.fetched_at",
                (jwks_url, Jsonb(key_set), fetched_at),
            )
