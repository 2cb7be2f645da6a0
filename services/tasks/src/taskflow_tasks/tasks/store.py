"""SQL writes of tasks: the locking reads a change starts from, the one-statement updates with
their outbox event, the hierarchy lock, and deletion. Reads live in ``queries``, creates in
``inserts``."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from ..outbox.events import OutboxEvent
from .queries import ACCESS_JOINS, RESPONSE_JOINS, RESPONSE_ROW, TASK_COLUMNS, lock_subtrees

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]
Cursor = psycopg.AsyncCursor[Any]

# The fields a PUT may change, in the order its audit event lists them.
EDITABLE = (
    "title",
    "description",
    "priority",
    "tags",
    "due_date",
    "is_recurring",
    "recurrence_pattern",
    "max_occurrences",
    "recurrence_trigger",
    "clone_subtasks_on_recur",
    "parent_task_id",
)
# Columns a change may write (names are never taken from input).
UPDATABLE = frozenset(
    {
        *EDITABLE,
        "status",
        "progress_percent",
        "started_at",
        "completed_at",
        "assignee_id",
        "has_spawned_next",
        "recurring_root_id",
    }
)

# The task as a change sees it; ``row_version`` (xmin) changes with every write of the row.
_READ_SQL = f"""
    SELECT {TASK_COLUMNS}, m.role AS caller_role, p.tenant_id,
           t.xmin::text AS row_version
    FROM tasks.tasks t {ACCESS_JOINS}
    WHERE t.id = %(id)s"""
_LOCK_SQL = _READ_SQL + " FOR UPDATE OF t"


async def read_for_change(
    conn: Conn, task_id: int, *, tenant_id: str, worker_id: int
) -> Row | None:
    """The task as :func:`lock_for_change` returns it, without the lock (for
    :func:`update_if_unchanged`)."""
    cur = await conn.execute(_READ_SQL, {"id": task_id, "tenant": tenant_id, "worker": worker_id})
    return await cur.fetchone()


async def lock_for_change(
    conn: Conn, task_id: int, *, tenant_id: str, worker_id: int
) -> Row | None:
    """The task row locked for update, with ``caller_role`` and the project's tenant."""
    cur = await conn.execute(_LOCK_SQL, {"id": task_id, "tenant": tenant_id, "worker": worker_id})
    return await cur.fetchone()


async def begin_and_lock(conn: Conn, task_id: int, *, tenant_id: str, worker_id: int) -> Row | None:
    """``BEGIN`` and :func:`lock_for_change` in one round trip. The connection must be in
    autocommit; the transaction stays open (end it with :func:`update_and_commit`)."""
    cur = psycopg.AsyncClientCursor(conn)  # client-side binding allows two statements
    await cur.execute(
        "BEGIN; " + _LOCK_SQL, {"id": task_id, "tenant": tenant_id, "worker": worker_id}
    )
    cur.nextset()
    return await cur.fetchone()


async def lock_hierarchy(conn: Conn, tenant_id: str) -> None:
    """Serialise re-parenting within a tenant until the transaction ends, so two concurrent
    moves cannot each pass the cycle check and together make a cycle. Take it before any
    task row lock (the tenant is known before the task is read), so it never deadlocks."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"taskflow:tree:{tenant_id}",)
    )


@functools.lru_cache(maxsize=256)
def _update_sql(columns: tuple[str, ...], with_event: bool = False, guarded: bool = False) -> str:
    """The UPDATE of ``columns`` answering the response row; ``with_event`` writes the
    change's outbox event in the same statement; ``guarded`` changes the row only while its
    ``row_version`` is still ``%(_version)s`` (and writes the event only then)."""
    unknown = set(columns) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    sets = "".join(f"{column} = %({column})s, " for column in columns)
    guard = " AND xmin = %(_version)s::xid" if guarded else ""
    event = (
        ", ev AS (INSERT INTO tasks.outbox (event_id, payload, created_at)"
        " SELECT %(_event_id)s, %(_payload)s::jsonb, %(_event_at)s FROM t)"
        if with_event
        else ""
    )
    return f"""
        WITH t AS (
            UPDATE tasks.tasks SET {sets} updated_at = %(_now)s
            WHERE id = %(_id)s{guard} RETURNING *
        ){event}
        SELECT {RESPONSE_ROW} FROM t {RESPONSE_JOINS}"""


async def send_update(conn: Conn, task_id: int, changes: dict[str, Any], now: datetime) -> Cursor:
    """Update ``changes`` (column → value) stamping ``updated_at``; the cursor yields the
    response row (read it when convenient, e.g. after the transaction)."""
    return await conn.execute(_update_sql(tuple(changes)), {**changes, "_now": now, "_id": task_id})


async def update_and_commit(
    conn: Conn, task_id: int, changes: dict[str, Any], now: datetime, event: OutboxEvent
) -> Cursor:
    """:func:`send_update`, the change's outbox ``event`` and ``COMMIT`` in one round trip (the
    transaction opened by :func:`begin_and_lock`); the cursor yields the response row."""
    cur = psycopg.AsyncClientCursor(conn)
    await cur.execute(
        _update_sql(tuple(changes), with_event=True) + ";\nCOMMIT",
        {**changes, **event.params(), "_now": now, "_id": task_id},
    )
    return cur


async def update_if_unchanged(
    conn: Conn,
    task_id: int,
    version: str,
    changes: dict[str, Any],
    now: datetime,
    event: OutboxEvent,
) -> Row | None:
    """Apply ``changes`` and write ``event`` in one statement (its own transaction, in
    autocommit), only if the row is still at ``version`` (:func:`read_for_change`); the
    response row, or ``None`` when another write came first (nothing was written)."""
    cur = await conn.execute(
        _update_sql(tuple(changes), with_event=True, guarded=True),
        {**changes, **event.params(), "_now": now, "_id": task_id, "_version": version},
    )
    return await cur.fetchone()


@dataclass(frozen=True)
class GuardedChange:
    """A change the database can apply by itself in one statement: ``sets`` (SQL assignments
    over the current row, parameters in ``params``) are what the workflow rules would write
    whenever ``guard`` (SQL over the row ``x``) holds; ``before`` names the column whose old
    value the event records as ``details.before``. Where the guard does not hold, nothing is
    written and the caller runs the rules in Python (for the answer, or the error)."""

    sets: str
    guard: str
    before: str
    params: dict[str, Any]


@functools.lru_cache(maxsize=64)
def _guarded_sql(sets: str, guard: str, before: str) -> str:
    if before not in UPDATABLE:
        raise ValueError(f"not updatable: {before}")
    # The subquery locks the row first, so ``before`` is the value this change replaces even
    # when another write commits in between; the assignments and the guard read ``x``, the
    # row being updated, which the UPDATE re-reads after waiting for such a write.
    return f"""
        WITH t AS (
            UPDATE tasks.tasks x SET {sets}, updated_at = %(_now)s
            FROM (SELECT t.id, t.{before} AS before, m.role AS caller_role
                  FROM tasks.tasks t {ACCESS_JOINS}
                  WHERE t.id = %(_id)s FOR UPDATE OF t) o
            WHERE x.id = o.id AND o.caller_role IS NOT NULL
              AND (o.caller_role = 'owner' OR x.assignee_id IS NULL
                   OR x.assignee_id = %(worker)s)
              AND ({guard})
            RETURNING x.*, o.before
        ), ev AS (
            INSERT INTO tasks.outbox (event_id, payload, created_at)
            SELECT %(_event_id)s,
                   jsonb_set(jsonb_set(%(_payload)s::jsonb, '{{project_id}}',
                                       to_jsonb(t.project_id)),
                             '{{details,before}}', to_jsonb(t.before)),
                   %(_event_at)s
            FROM t
        )
        SELECT {RESPONSE_ROW} FROM t {RESPONSE_JOINS}"""


async def update_guarded(
    conn: Conn,
    task_id: int,
    change: GuardedChange,
    now: datetime,
    event: OutboxEvent,
    *,
    tenant_id: str,
    worker_id: int,
) -> Row | None:
    """Apply ``change`` with its ``event`` (project id and ``details.before`` filled in) in one
    statement, its own transaction in autocommit, if the caller may modify the task (FR-011)
    and the guard holds; the response row, or ``None`` when nothing was written (no such task,
    no access, or the rules need Python: the caller then takes the general path)."""
    cur = await conn.execute(
        _guarded_sql(change.sets, change.guard, change.before),
        {
            **change.params,
            **event.params(),
            "_now": now,
            "_id": task_id,
            "tenant": tenant_id,
            "worker": worker_id,
        },
    )
    return await cur.fetchone()


async def update_task(conn: Conn, task_id: int, changes: dict[str, Any], now: datetime) -> Row:
    """Apply ``changes``, stamp ``updated_at``, return the response row."""
    return await one_row(await send_update(conn, task_id, changes, now))


async def one_row(cur: Cursor) -> Row:
    row = await cur.fetchone()
    assert row is not None
    return row


# --- deletion ------------------------------------------------------------------------------


async def subtree_ids(conn: Conn, task_id: int) -> list[int]:
    """The task and all its descendants, each locked leaves first (:func:`queries.lock_subtrees`
    says why); in (depth, id) order, the task first."""
    cur = await conn.execute(lock_subtrees("id = %s"), (task_id,))
    rows = await cur.fetchall()
    return [row["id"] for row in sorted(rows, key=lambda row: (row["depth"], row["id"]))]


async def reroot_series(conn: Conn, deleted_ids: Sequence[int], now: datetime) -> list[Row]:
    """Occurrences whose series original is being deleted move to a new original: the oldest
    remaining occurrence. Returns ``{id, project_id, before, after}`` per moved task."""
    cur = await conn.execute(
        """
        WITH orphans AS (
            SELECT id, recurring_root_id AS old_root FROM tasks.tasks
            WHERE recurring_root_id = ANY(%(ids)s) AND NOT (id = ANY(%(ids)s))
        ), heirs AS (
            SELECT old_root, min(id) AS new_root FROM orphans GROUP BY old_root
        )
        UPDATE tasks.tasks t
           SET recurring_root_id = CASE WHEN t.id = h.new_root THEN NULL ELSE h.new_root END,
               updated_at = %(now)s
          FROM orphans o JOIN heirs h USING (old_root)
         WHERE t.id = o.id
        RETURNING t.id, t.project_id, o.old_root AS before, t.recurring_root_id AS after
        """,
        {"ids": list(deleted_ids), "now": now},
    )
    return await cur.fetchall()


async def delete_tasks(conn: Conn, ids: Sequence[int]) -> list[Row]:
    """Delete the given tasks in one statement; their rows, in the order of ``ids``."""
    cur = await conn.execute(
        "DELETE FROM tasks.tasks WHERE id = ANY(%s)"
        " RETURNING id, project_id, title, status, parent_task_id",
        (list(ids),),
    )
    by_id = {row["id"]: row for row in await cur.fetchall()}
    return [by_id[i] for i in ids if i in by_id]
