"""SQL of the audit service: appending to the chain, the lists, and reading the chain back."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
import psycopg_pool
from psycopg.rows import dict_row
from taskflow_core.db import transaction

from .chain import (
    GENESIS_HASH,
    HASHED_FIELDS,
    ChainReport,
    ChainVerifier,
    LinkedEntry,
    SubsetVerifier,
    entry_hash,
)
from .events import AuditEvent
from .paging import Page

READ_COLUMNS = (
    "id, event_id, project_id, entity_type, entity_id, action, actor_id, actor_handle,"
    " actor_type, details, created_at"
)
CHAIN_COLUMNS = f"{READ_COLUMNS}, tenant_id, recorded_at, prev_hash, hash"

StoreOutcome = Literal["stored", "duplicate"]


@dataclass(frozen=True)
class Appended:
    """What happened to one event of a batch: stored under ``id``, or already stored as ``id``."""

    event_id: uuid.UUID
    outcome: StoreOutcome
    id: int


@dataclass(frozen=True)
class SearchFilters:
    """Filters of GET /api/audit (all optional; ``since`` inclusive, ``until`` exclusive)."""

    actor_id: int | None = None
    entity_type: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Scope:
    """Whose entries a search may see: entries of ``project_ids`` and, with
    ``tenant_level``, the project-less entries (agents, workers) of ``tenant_id``."""

    tenant_id: str
    project_ids: Sequence[int]
    tenant_level: bool = True


@dataclass(frozen=True)
class ChainHead:
    last_id: int
    last_hash: str


def _page_sql(page: Page) -> tuple[str, str, list[Any]]:
    """(keyset condition, ORDER BY ... LIMIT ... OFFSET ..., params) for ``page``."""
    params: list[Any] = []
    condition = ""
    if page.after is not None:
        condition = (
            " AND (created_at, id) > (%s, %s)"
            if page.order == "asc"
            else (" AND (created_at, id) < (%s, %s)")
        )
        params += [page.after.created_at, page.after.id]
    direction = "ASC" if page.order == "asc" else "DESC"
    tail = f" ORDER BY created_at {direction}, id {direction} LIMIT %s OFFSET %s"
    return condition, tail, params


class AuditStore:
    """The ``audit`` schema: entries (append-only, hash-chained) and the chain head."""

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool) -> None:
        # The pool's connections return dict rows (taskflow_core.db.create_pool).
        self.pool: psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]] = pool

    # -- appending ---------------------------------------------------------------------------
    async def append(self, events: Sequence[AuditEvent], recorded_at: datetime) -> list[Appended]:
        """Store ``events`` in order, each event id once, extending the hash chain.

        One transaction: the chain head row is locked FOR UPDATE first, so appends from every
        process and replica are serialised, ids stay contiguous and each entry's ``prev_hash``
        is the hash of the entry stored just before it."""
        if not events:
            return []
        # Pipelined: BEGIN, the head and the known ids go in one round trip, the INSERT, the
        # head's UPDATE and COMMIT in another (each round trip delays the entry's visibility).
        async with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            head_cur = await conn.execute(
                "SELECT last_id, last_hash FROM audit.chain_head WHERE id = 1 FOR UPDATE"
            )
            known_cur = await conn.execute(
                "SELECT event_id, id FROM audit.entries WHERE event_id = ANY(%s)",
                ([e.event_id for e in events],),
            )
            head_row = await head_cur.fetchone()
            assert head_row is not None, "audit.chain_head has no row (migration 0002)"
            last_id, last_hash = int(head_row["last_id"]), str(head_row["last_hash"])
            known = {row["event_id"]: int(row["id"]) for row in await known_cur.fetchall()}
            fresh: list[tuple[int, AuditEvent]] = []  # (id it gets, event), in batch order
            outcomes: list[Appended] = []
            for event in events:
                if event.event_id in known:
                    outcomes.append(Appended(event.event_id, "duplicate", known[event.event_id]))
                    continue
                new_id = last_id + len(fresh) + 1
                known[event.event_id] = new_id
                fresh.append((new_id, event))
                outcomes.append(Appended(event.event_id, "stored", new_id))
            if not fresh:
                return outcomes
            details = await self._as_stored_json(conn, [e.details for _, e in fresh])
            rows = []
            for (new_id, event), stored_details in zip(fresh, details, strict=True):
                entry = {
                    **vars(event),
                    "id": new_id,
                    "details": stored_details,
                    "recorded_at": recorded_at,
                }
                new_hash = entry_hash(last_hash, entry)
                columns = (entry[k] for k in _STORED_AS_GIVEN)
                rows.append((*columns, json.dumps(stored_details), last_hash, new_hash))
                last_id, last_hash = new_id, new_hash
            # One statement for the batch (a column array each): a thousand-row batch is one
            # round trip and one plan, not a thousand Bind/Execute messages.
            await conn.execute(_INSERT_SQL, [list(column) for column in zip(*rows, strict=True)])
            await conn.execute(
                "UPDATE audit.chain_head SET last_id = %s, last_hash = %s, updated_at = %s"
                " WHERE id = 1",
                (last_id, last_hash, recorded_at),
            )
        return outcomes

    @staticmethod
    async def _as_stored_json(
        conn: psycopg.AsyncConnection[Any], documents: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """``documents`` as jsonb will give them back, so the hash computed now is the hash
        recomputed from the stored row later. Only numbers can come back different (``1e+16``
        turns into ``10000000000000000``; key order does not count, the hash sorts keys): a
        document without a float is what jsonb gives back, and only the others make the trip
        through PostgreSQL (most events have none: the trip cost ~50 µs an event)."""
        stored = list(documents)
        with_floats = [i for i, doc in enumerate(documents) if _has_float(doc)]
        if not with_floats:
            return stored
        cur = await conn.execute(
            "SELECT d.doc::jsonb AS doc FROM unnest(%s::text[]) WITH ORDINALITY AS d(doc, n)"
            " ORDER BY d.n",
            ([json.dumps(documents[i], allow_nan=False) for i in with_floats],),
        )
        for i, row in zip(with_floats, await cur.fetchall(), strict=True):
            stored[i] = dict(row["doc"])
        return stored

    # -- lists ---------------------------------------------------------------------------------
    async def task_scope(self, task_id: int) -> tuple[int, str] | None:
        """(project id, tenant id) of a task, from its newest stored entry (it survives the
        task: a deleted task's history still says where it lived)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT project_id, tenant_id FROM audit.entries"
                " WHERE entity_type = 'task' AND entity_id = %s AND project_id IS NOT NULL"
                " ORDER BY created_at DESC, id DESC LIMIT 1",
                (task_id,),
            )
            row = await cur.fetchone()
        return None if row is None else (int(row["project_id"]), str(row["tenant_id"]))

    async def list_for_entity(self, entity_type: str, entity_id: int, page: Page) -> list[dict]:
        condition, tail, params = _page_sql(page)
        sql = (
            f"SELECT {READ_COLUMNS} FROM audit.entries"
            f" WHERE entity_type = %s AND entity_id = %s{condition}{tail}"
        )
        return await self._fetch(sql, [entity_type, entity_id, *params, page.limit, page.offset])

    async def list_for_project(self, project_id: int, page: Page) -> list[dict]:
        condition, tail, params = _page_sql(page)
        sql = f"SELECT {READ_COLUMNS} FROM audit.entries WHERE project_id = %s{condition}{tail}"
        return await self._fetch(sql, [project_id, *params, page.limit, page.offset])

    async def search(self, scope: Scope, filters: SearchFilters, page: Page) -> list[dict]:
        where = ["tenant_id = %s"]
        params: list[Any] = [scope.tenant_id]
        if scope.tenant_level:
            where.append("(project_id = ANY(%s) OR project_id IS NULL)")
        else:
            where.append("project_id = ANY(%s)")
        params.append(list(scope.project_ids))
        for column, value, operator in (
            ("actor_id", filters.actor_id, "="),
            ("entity_type", filters.entity_type, "="),
            ("action", filters.action, "="),
            ("created_at", filters.since, ">="),
            ("created_at", filters.until, "<"),
        ):
            if value is not None:
                where.append(f"{column} {operator} %s")
                params.append(value)
        condition, tail, page_params = _page_sql(page)
        sql = (
            f"SELECT {READ_COLUMNS} FROM audit.entries WHERE {' AND '.join(where)}{condition}{tail}"
        )
        return await self._fetch(sql, [*params, *page_params, page.limit, page.offset])

    async def _fetch(self, sql: str, params: list[Any]) -> list[dict]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return list(await cur.fetchall())

    # -- the chain, read back ------------------------------------------------------------------
    async def chain_head(self) -> ChainHead:
        async with self.pool.connection() as conn:
            return await read_head(conn)

    async def verify_project(self, project_id: int) -> ChainReport:
        """The project's part of the chain checked in one snapshot (so appends running meanwhile
        cannot look like a break), streamed: memory stays flat however long the history."""
        async with transaction(self.pool) as conn:
            await conn.execute(SNAPSHOT)
            return await verify_project_chain(conn, project_id)


def _has_float(node: Any) -> bool:
    if isinstance(node, float):
        return True
    if isinstance(node, dict):
        return any(_has_float(value) for value in node.values())
    if isinstance(node, list):
        return any(_has_float(item) for item in node)
    return False


async def read_head(conn: psycopg.AsyncConnection[Any]) -> ChainHead:
    cur = await conn.execute("SELECT last_id, last_hash FROM audit.chain_head WHERE id = 1")
    row = await cur.fetchone()
    if row is None:
        return ChainHead(0, GENESIS_HASH)
    return ChainHead(int(row["last_id"]), str(row["last_hash"]))


SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"

_PROJECT_CHAIN_SQL = (
    "SELECT e.id, e.event_id, e.tenant_id, e.project_id, e.entity_type, e.entity_id,"
    " e.action, e.actor_id, e.actor_handle, e.actor_type, e.details, e.created_at,"
    " e.recorded_at, e.prev_hash, e.hash,"
    " p.hash AS predecessor_hash, n.prev_hash AS successor_prev_hash"
    " FROM audit.entries e"
    " LEFT JOIN audit.entries p ON p.id = e.id - 1"
    " LEFT JOIN audit.entries n ON n.id = e.id + 1"
    " WHERE e.project_id = %s ORDER BY e.id"
)


async def verify_project_chain(
    conn: psycopg.AsyncConnection[Any], project_id: int, batch: int = 500
) -> ChainReport:
    """Check the entries of ``project_id`` and every link touching them (with the stored hash
    of the entry before each and the ``prev_hash`` of the entry after it, whatever project those
    belong to) against the head. Run inside a :data:`SNAPSHOT` transaction; the rows come
    through a server-side cursor, ``batch`` at a time (in the service, the event loop is
    held for one batch's hashing at most: about 25 ms)."""
    head = await read_head(conn)
    verifier = SubsetVerifier(head.last_id, head.last_hash)
    async with conn.cursor(name="project_chain", row_factory=dict_row) as cur:
        cur.itersize = batch
        await cur.execute(_PROJECT_CHAIN_SQL, (project_id,))
        async for row in cur:
            verifier.feed(LinkedEntry(row, row["predecessor_hash"], row["successor_prev_hash"]))
    return verifier.finish()


async def verify_whole_chain(conn: psycopg.AsyncConnection[Any]) -> ChainReport:
    """Recompute every entry in id order and end at the head (inside a :data:`SNAPSHOT`)."""
    head = await read_head(conn)
    verifier = ChainVerifier()
    async for entry in iter_chain(conn):
        verifier.feed(entry)
    return verifier.finish(head.last_id, head.last_hash)


async def iter_chain(
    conn: psycopg.AsyncConnection[Any], batch: int = 2000
) -> AsyncIterator[dict[str, Any]]:
    """Every entry in id order, fetched by keyset in batches (for the full verification)."""
    after = 0
    while True:
        cur = await conn.execute(
            f"SELECT {CHAIN_COLUMNS} FROM audit.entries WHERE id > %s ORDER BY id LIMIT %s",
            (after, batch),
        )
        rows = await cur.fetchall()
        for row in rows:
            yield row
        if len(rows) < batch:
            return
        after = int(rows[-1]["id"])


# An entry's row: the hashed fields as given, then its details as jsonb and its chain links.
_STORED_AS_GIVEN = tuple(name for name in HASHED_FIELDS if name != "details")
_ARRAY_TYPES = {
    "id": "bigint",
    "event_id": "uuid",
    "project_id": "bigint",
    "entity_id": "bigint",
    "actor_id": "bigint",
    "created_at": "timestamptz",
    "recorded_at": "timestamptz",
}
_INSERT_SQL = (
    f"INSERT INTO audit.entries ({', '.join(_STORED_AS_GIVEN)}, details, prev_hash, hash)"
    " SELECT * FROM unnest("
    + ", ".join(f"%s::{_ARRAY_TYPES.get(name, 'text')}[]" for name in _STORED_AS_GIVEN)
    + ", %s::jsonb[], %s::text[], %s::text[])"
)
