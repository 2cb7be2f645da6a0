"""The control: a bare Falcon + psycopg_pool endpoint that selects one task row by primary key.

Every scenario's CPU per request is reported as a multiple of this app's, measured in the same
run under the same conditions, so figures compare across machines. It reads ``tasks.tasks`` when
the tasks service's schema has it and it holds rows, else a small table of its own
(``bench_control.items``, ids 1..1000).

``/tasks/{id}`` is the control itself (psycopg's default: BEGIN, SELECT, COMMIT on a plain pool).
Three informative variants show what the services' database pattern costs on top of it:
``/checked-tx/`` (check on checkout + explicit transaction), ``/checked-pipeline-tx/`` (the same
in a pipeline, as the tasks service's ``_unit``) and ``/autocommit/`` (one round trip).

Run: ``CONTROL_DATABASE_URL=... uvicorn bench.control_app:app`` (bench/run.py does it).
"""

from __future__ import annotations

import os
from typing import Any

import falcon
import falcon.asgi
import falcon.media
import orjson
import psycopg
import psycopg_pool
from psycopg import sql
from psycopg.rows import dict_row

CANDIDATE_TABLES = ("tasks.tasks", "tasks.task")
OWN_TABLE = "bench_control.items"


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


class Lifecycle:
    def __init__(self, pool: psycopg_pool.AsyncConnectionPool, state: dict[str, Any]) -> None:
        self.pool = pool
        self.state = state

    async def process_startup(self, scope: Any, event: Any) -> None:
        await self.pool.open(wait=True)
        if "query" in self.state:
            return
        async with self.pool.connection() as conn:
            self.state["query"] = await _choose_query(conn)

    async def process_shutdown(self, scope: Any, event: Any) -> None:
        await self.pool.close()


async def _choose_query(conn: psycopg.AsyncConnection[Any]) -> sql.Composable:
    for name in CANDIDATE_TABLES:
        cur = await conn.execute("SELECT to_regclass(%s) AS reg", (name,))
        row = await cur.fetchone()
        if row and row["reg"] is not None:
            schema, table = name.split(".")
            query = sql.SQL("SELECT * FROM {} WHERE id = %s").format(sql.Identifier(schema, table))
            cur = await conn.execute(
                sql.SQL("SELECT EXISTS (SELECT 1 FROM {}) AS has_rows").format(
                    sql.Identifier(schema, table)
                )
            )
            found = await cur.fetchone()
            if found and found["has_rows"]:
                return query
    await conn.execute("CREATE SCHEMA IF NOT EXISTS bench_control")
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS bench_control.items ("
        " id bigint PRIMARY KEY, title text NOT NULL, status text NOT NULL,"
        " progress_percent int NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
    )
    await conn.execute(
        "INSERT INTO bench_control.items (id, title, status, progress_percent)"
        " SELECT g, 'control item ' || g, 'pending', 0 FROM generate_series(1, 1000) g"
        " ON CONFLICT DO NOTHING"
    )
    await conn.commit()
    return sql.SQL("SELECT * FROM bench_control.items WHERE id = %s")


class TaskByIdResource:
    def __init__(self, pool: psycopg_pool.AsyncConnectionPool, state: dict[str, Any]) -> None:
        self.pool = pool
        self.state = state

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: int
    ) -> None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self.state["query"], (task_id,))
            row = await cur.fetchone()
        if row is None:
            raise falcon.HTTPNotFound()
        resp.media = row


class TaskInTransactionResource:
    """The same SELECT the way the services run it: a pool that checks each connection on
    checkout (the services' ``check=check_connection``) and an explicit transaction."""

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool, state: dict[str, Any]) -> None:
        self.pool = pool
        self.state = state

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: int
    ) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(self.state["query"], (task_id,))
            row = await cur.fetchone()
        if row is None:
            raise falcon.HTTPNotFound()
        resp.media = row


class TaskInPipelineResource(TaskInTransactionResource):
    """As above inside ``conn.pipeline()`` too: the tasks service's ``_unit``."""

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: int
    ) -> None:
        async with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            cur = await conn.execute(self.state["query"], (task_id,))
        row = await cur.fetchone()
        if row is None:
            raise falcon.HTTPNotFound()
        resp.media = row


class TableResource:
    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = {"query": self.state["query"].as_string(None)}


class HealthResource:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = {"status": "healthy"}


def create_app(database_url: str | None = None, pool_max_size: int = 10) -> falcon.asgi.App:
    url = database_url or os.environ["CONTROL_DATABASE_URL"]
    pool = psycopg_pool.AsyncConnectionPool(
        url,
        kwargs={"row_factory": dict_row, "prepare_threshold": 5},
        min_size=1,
        max_size=pool_max_size,
        open=False,
        name="bench-control",
    )
    checked_pool = psycopg_pool.AsyncConnectionPool(
        url,
        kwargs={"row_factory": dict_row, "prepare_threshold": 5},
        min_size=1,
        max_size=pool_max_size,
        open=False,
        check=psycopg_pool.AsyncConnectionPool.check_connection,
        name="bench-control-checked",
    )
    autocommit_pool = psycopg_pool.AsyncConnectionPool(
        url,
        kwargs={"row_factory": dict_row, "prepare_threshold": 5, "autocommit": True},
        min_size=1,
        max_size=pool_max_size,
        open=False,
        name="bench-control-autocommit",
    )
    state: dict[str, Any] = {}
    app = falcon.asgi.App(
        middleware=[
            Lifecycle(pool, state),
            Lifecycle(checked_pool, state),
            Lifecycle(autocommit_pool, state),
        ]
    )
    handler = falcon.media.JSONHandler(dumps=_dumps, loads=orjson.loads)
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = handler
    app.add_route("/tasks/{task_id:int}", TaskByIdResource(pool, state))
    app.add_route("/checked-tx/tasks/{task_id:int}", TaskInTransactionResource(checked_pool, state))
    app.add_route(
        "/checked-pipeline-tx/tasks/{task_id:int}", TaskInPipelineResource(checked_pool, state)
    )
    # One round trip: no BEGIN/COMMIT around a single read.
    app.add_route("/autocommit/tasks/{task_id:int}", TaskByIdResource(autocommit_pool, state))
    app.add_route("/table", TableResource(state))
    app.add_route("/health", HealthResource())
    return app


def _asgi_app() -> falcon.asgi.App | None:
    if "CONTROL_DATABASE_URL" not in os.environ:
        return None
    return create_app(pool_max_size=int(os.environ.get("DB_POOL_MAX_SIZE", "10")))


app = _asgi_app()
