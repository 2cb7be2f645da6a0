"""The shared pool against a real PostgreSQL: connections the server dropped while idle (Neon's
idle cut, ``pg_terminate_backend``, a restart) are replaced at once, not after psycopg_pool's
1 s back-off per dead connection; live ones are reused."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import psycopg
from taskflow_core.config import Settings
from taskflow_core.db import create_pool

APP = "taskflow-pool-test"


def terminate_backends(admin_url: str, database: str) -> int:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_dropped_idle_connections_are_replaced_within_the_pool_timeout(
    db_url: str, pg_admin_url: str
) -> None:
    # Three dead connections and a pool timeout under 1 s: psycopg_pool's own check would
    # sleep 1 s after the first dead one and answer PoolTimeout.
    settings = Settings(
        database_url=db_url, db_pool_min_size=3, db_pool_max_size=3, db_pool_timeout=0.8
    )
    database = urlsplit(db_url).path.lstrip("/")

    async def scenario() -> tuple[set[int], int, int]:
        pool = create_pool(settings, APP)
        await pool.open(wait=True)
        try:
            before = set()
            conns = [await pool.getconn() for _ in range(3)]
            for conn in conns:
                cur = await conn.execute("SELECT pg_backend_pid() AS pid")
                before.add((await cur.fetchone())["pid"])  # type: ignore[index]
            for conn in conns:
                await pool.putconn(conn)

            killed = await asyncio.to_thread(terminate_backends, pg_admin_url, database)
            await asyncio.sleep(0.2)  # the termination notices reach the client sockets

            async with pool.connection() as conn:
                cur = await conn.execute("SELECT pg_backend_pid() AS pid")
                after = (await cur.fetchone())["pid"]  # type: ignore[index]
            return before, killed, after
        finally:
            await pool.close()

    before, killed, after = asyncio.run(scenario())
    assert killed >= 1
    assert after not in before


def test_a_live_connection_is_reused(db_url: str) -> None:
    settings = Settings(database_url=db_url, db_pool_min_size=1, db_pool_max_size=1)

    async def scenario() -> list[int]:
        pool = create_pool(settings, APP)
        await pool.open(wait=True)
        pids = []
        try:
            for _ in range(3):
                async with pool.connection() as conn:
                    await conn.execute("SELECT 1")
                    pids.append(conn.info.backend_pid)  # the client connection's own id
        finally:
            await pool.close()
        return pids

    pids = asyncio.run(scenario())
    assert len(set(pids)) == 1, pids
