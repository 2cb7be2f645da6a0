"""SQL for tasks. Every read returns the response row in one statement: the task, its assignee
handle, its subtask roll-up and its series' spawn count, with the caller's access folded in
(project in the caller's tenant → else no row; ``caller_role`` NULL → not a member)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from .outbox.events import OutboxEvent

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]
Cursor = psycopg.AsyncCursor[Any]

# Columns a request may write through update_task (names are never taken from input).
UPDATABLE = frozenset(
    {
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
        "status",
        "progress_percent",
        "started_at",
        "completed_at",
        "assignee_id",
        "has_spawned_next",
        "recurring_root_id",
    }
)

_TASK_FIELDS = """
    {t}.id, {t}.project_id, {t}.title, {t}.description, {t}.status, {t}.priority,
    {t}.progress_percent, {t}.tags, {t}.due_date, {t}.is_recurring, {t}.recurrence_pattern,
    {t}.max_occurrences, {t}.recurring_root_id, {t}.recurrence_trigger,
    {t}.clone_subtasks_on_recur, {t}.has_spawned_next, {t}.assignee_id, {t}.parent_task_id,
    {t}.created_by_id, {t}.started_at, {t}.completed_at, {t}.created_at, {t}.updated_at"""

# The response row of a task aliased ``t``: needs _ENRICH_JOINS.
_ROW = (
    _TASK_FIELDS.format(t="t")
    + """,
    a.handle AS assignee_handle,
    st.subtask_count, st.subtask_progress,
    CASE WHEN t.is_recurring OR t.recurring_root_id IS NOT NULL OR t.has_spawned_next
         THEN (SELECT count(*)::int FROM tasks.tasks r
               WHERE r.recurring_root_id = coalesce(t.recurring_root_id, t.id))
         ELSE 0 END AS spawn_count"""
)
_ENRICH_JOINS = """
    LEFT JOIN tasks.workers a ON a.id = t.assignee_id
    LEFT JOIN LATERAL (
        SELECT count(*)::int AS subtask_count,
               floor(avg(c.progress_percent))::int AS subtask_progress
        FROM tasks.tasks c WHERE c.parent_task_id = t.id
    ) st ON true"""
_ACCESS_JOINS = """
    JOIN tasks.projects p ON p.id = t.project_id AND p.tenant_id = %(tenant)s
                   AND p.deleted_at IS NULL
    LEFT JOIN tasks.project_members m ON m.project_id = t.project_id AND m.worker_id = %(worker)s"""


def like_pattern(text: str) -> str:
    """``%text%`` for ILIKE with the wildcards in ``text`` matching literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def send_with_subtasks(conn: Conn, task_id: int, *, tenant_id: str, worker_id: int) -> Cursor:
    """The task (with ``caller_role``) and its direct subtasks ordered by id, in one query;
    read the rows with :func:`task_and_subtasks`."""
    return await conn.execute(
        f"""
        SELECT {_ROW}, m.role AS caller_role
        FROM tasks.tasks t {_ACCESS_JOINS} {_ENRICH_JOINS}
        WHERE t.id = %(id)s OR t.parent_task_id = %(id)s
        ORDER BY (t.id <> %(id)s), t.id
        """,
        {"id": task_id, "tenant": tenant_id, "worker": worker_id},
    )


def task_and_subtasks(rows: list[Row], task_id: int) -> tuple[Row | None, list[Row]]:
    """``(None, [])`` when the task does not exist in the caller's tenant."""
    if not rows or rows[0]["id"] != task_id:
        return None, []
    return rows[0], rows[1:]


# The task as a change sees it; ``row_version`` (xmin) changes with every write of the row.
_READ_SQL = f"""
    SELECT {_TASK_FIELDS.format(t="t")}, m.role AS caller_role, p.tenant_id,
           t.xmin::text AS row_version
    FROM tasks.tasks t {_ACCESS_JOINS}
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


async def member_handle(conn: Conn, project_id: int, worker_id: int) -> str | None:
    """The handle of ``worker_id`` if it is a member of the project, else None."""
    cur = await conn.execute(
        "SELECT w.handle FROM tasks.project_members m JOIN tasks.workers w ON w.id = m.worker_id"
        " WHERE m.project_id = %s AND m.worker_id = %s",
        (project_id, worker_id),
    )
    row = await cur.fetchone()
    return None if row is None else row["handle"]


async def ancestors(conn: Conn, task_id: int) -> list[int]:
    """Ids above ``task_id`` in the hierarchy, nearest first (bounded against bad data)."""
    cur = await conn.execute(
        """
        WITH RECURSIVE up(id, parent, depth) AS (
            SELECT id, parent_task_id, 0 FROM tasks.tasks WHERE id = %s
            UNION ALL
            SELECT t.id, t.parent_task_id, up.depth + 1
            FROM tasks.tasks t JOIN up ON t.id = up.parent WHERE up.depth < 10000
        )
        SELECT id FROM up WHERE depth > 0 ORDER BY depth
        """,
        (task_id,),
    )
    return [row["id"] for row in await cur.fetchall()]


async def lock_hierarchy(conn: Conn, tenant_id: str) -> None:
    """Serialise re-parenting within a tenant until the transaction ends, so two concurrent
    moves cannot each pass the cycle check and together make a cycle. Take it before any
    task row lock (the tenant is known before the task is read), so it never deadlocks."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"taskflow:tree:{tenant_id}",)
    )


async def parent_project(conn: Conn, parent_id: int) -> int | None:
    cur = await conn.execute("SELECT project_id FROM tasks.tasks WHERE id = %s", (parent_id,))
    row = await cur.fetchone()
    return None if row is None else row["project_id"]


async def insert_task(conn: Conn, values: dict[str, Any]) -> Row:
    """Insert a task and return its response row."""
    columns = list(values)
    placeholders = ", ".join(f"%({c})s" for c in columns)
    cur = await conn.execute(
        f"""
        WITH t AS (
            INSERT INTO tasks.tasks ({", ".join(columns)}) VALUES ({placeholders}) RETURNING *
        )
        SELECT {_ROW} FROM t {_ENRICH_JOINS}
        """,
        values,
    )
    row = await cur.fetchone()
    assert row is not None
    return row


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
        SELECT {_ROW} FROM t {_ENRICH_JOINS}"""


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
                  FROM tasks.tasks t {_ACCESS_JOINS}
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
        SELECT {_ROW} FROM t {_ENRICH_JOINS}"""


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


# Types of the columns a create writes (parameters inside INSERT ... SELECT need them).
_CREATE_COLUMNS = {
    "project_id": "bigint",
    "title": "text",
    "description": "text",
    "priority": "text",
    "tags": "text[]",
    "due_date": "timestamptz",
    "is_recurring": "boolean",
    "recurrence_pattern": "text",
    "max_occurrences": "integer",
    "recurrence_trigger": "text",
    "clone_subtasks_on_recur": "boolean",
    "assignee_id": "bigint",
    "parent_task_id": "bigint",
    "created_by_id": "bigint",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
}
_CREATE_SELECT = ", ".join(f"%({c})s::{t}" for c, t in _CREATE_COLUMNS.items())
_CREATED_FIELDS = _TASK_FIELDS.format(t="t")


async def create_checked(
    conn: Conn, values: dict[str, Any], event: OutboxEvent, *, tenant_id: str, worker_id: int
) -> Row | None:
    """Insert a task only if the caller may: the project is visible and they are a member,
    the assignee (if any) is a member, the parent (if any) is in the project; and its
    "created" ``event`` (entity id filled in) with it. One statement, so in autocommit it is
    its own transaction: one round trip for the whole create.

    ``None``: project not visible. Otherwise a row with ``caller_role``, ``member_handle``,
    ``parent_project_id`` and, when inserted, the response row's fields (``id`` NULL when a
    check refused it)."""
    cur = await conn.execute(
        f"""
        WITH acc AS (
            SELECT p.id, m.role AS caller_role,
                   (SELECT w.handle FROM tasks.project_members am
                      JOIN tasks.workers w ON w.id = am.worker_id
                     WHERE am.project_id = p.id
                       AND am.worker_id = %(assignee_id)s::bigint) AS member_handle,
                   (SELECT pt.project_id FROM tasks.tasks pt
                     WHERE pt.id = %(parent_task_id)s::bigint) AS parent_project_id
            FROM tasks.projects p
            LEFT JOIN tasks.project_members m
                   ON m.project_id = p.id AND m.worker_id = %(_worker)s
            WHERE p.id = %(project_id)s::bigint AND p.tenant_id = %(_tenant)s
              AND p.deleted_at IS NULL
        ), t AS (
            INSERT INTO tasks.tasks ({", ".join(_CREATE_COLUMNS)})
            SELECT {_CREATE_SELECT} FROM acc
            WHERE acc.caller_role IS NOT NULL
              AND (%(assignee_id)s::bigint IS NULL OR acc.member_handle IS NOT NULL)
              AND (%(parent_task_id)s::bigint IS NULL OR acc.parent_project_id = acc.id)
            RETURNING *
        ), ev AS (
            INSERT INTO tasks.outbox (event_id, payload, created_at)
            SELECT %(_event_id)s, jsonb_set(%(_payload)s::jsonb, '{{entity_id}}', to_jsonb(t.id)),
                   %(_event_at)s
            FROM t
        )
        SELECT acc.caller_role, acc.member_handle, acc.parent_project_id, {_CREATED_FIELDS},
               acc.member_handle AS assignee_handle, 0 AS subtask_count,
               NULL::int AS subtask_progress, 0 AS spawn_count
        FROM acc LEFT JOIN t ON true
        """,
        {**values, **event.params(), "_tenant": tenant_id, "_worker": worker_id},
    )
    return await cur.fetchone()


@dataclass(frozen=True)
class ListFilters:
    status: str | None = None
    assignee_id: int | None = None
    priority: str | None = None
    search: str | None = None
    tags: tuple[str, ...] = ()
    has_due_date: bool | None = None
    sort_by: str = "created_at"
    sort_order: str = "desc"
    limit: int = 50
    offset: int = 0


# The TaskListItem fields in its order (a unit test holds it to task_schemas.task_list_item),
# selected from the lateral row ``l`` of send_list.
LIST_ITEM_FIELDS = (
    "id", "title", "description", "status", "priority", "progress_percent", "tags",
    "due_date", "is_recurring", "project_id", "assignee_id", "assignee_handle",
    "parent_task_id", "subtask_count", "subtask_progress", "spawn_count", "created_at",
    "updated_at",
)  # fmt: skip
_LIST_ITEM = ", ".join(f"l.{name}" for name in LIST_ITEM_FIELDS)

# Every order ends with id, so pages never overlap or skip rows that tie.
_ORDERS = {
    ("created_at", "asc"): "t.created_at ASC, t.id ASC",
    ("created_at", "desc"): "t.created_at DESC, t.id DESC",
    ("title", "asc"): "t.title ASC, t.id ASC",
    ("title", "desc"): "t.title DESC, t.id DESC",
    # "desc" is most urgent first (critical, high, medium, low), as the old API did.
    ("priority", "desc"): "t.priority_rank ASC, t.id DESC",
    ("priority", "asc"): "t.priority_rank DESC, t.id ASC",
    ("due_date", "asc"): "t.due_date ASC NULLS LAST, t.id ASC",
    ("due_date", "desc"): "t.due_date DESC NULLS FIRST, t.id DESC",
}


async def send_list(
    conn: Conn, project_id: int, filters: ListFilters, *, tenant_id: str, worker_id: int
) -> Cursor:
    """One page of the project's tasks with the caller's role; read with :func:`list_result`."""
    where = ["t.project_id = acc.id", "acc.caller_role IS NOT NULL"]
    params: dict[str, Any] = {
        "pid": project_id,
        "tenant": tenant_id,
        "worker": worker_id,
        "limit": filters.limit,
        "offset": filters.offset,
    }
    if filters.status:
        where.append("t.status = %(status)s")
        params["status"] = filters.status
    if filters.assignee_id:
        where.append("t.assignee_id = %(assignee)s")
        params["assignee"] = filters.assignee_id
    if filters.priority:
        where.append("t.priority = %(priority)s")
        params["priority"] = filters.priority
    if filters.search:
        where.append("t.title ILIKE %(search)s ESCAPE '\\'")
        params["search"] = like_pattern(filters.search)
    if filters.tags:
        where.append("t.tags @> %(tags)s::text[]")
        params["tags"] = list(filters.tags)
    if filters.has_due_date is not None:
        where.append("t.due_date IS NOT NULL" if filters.has_due_date else "t.due_date IS NULL")
    order = _ORDERS[(filters.sort_by, filters.sort_order)]
    return await conn.execute(
        f"""
        WITH acc AS (
            SELECT p.id, m.role AS caller_role
            FROM tasks.projects p
            LEFT JOIN tasks.project_members m ON m.project_id = p.id AND m.worker_id = %(worker)s
            WHERE p.id = %(pid)s AND p.tenant_id = %(tenant)s AND p.deleted_at IS NULL
        )
        SELECT acc.caller_role, {_LIST_ITEM}
        FROM acc LEFT JOIN LATERAL (
            SELECT {_ROW}
            FROM tasks.tasks t {_ENRICH_JOINS}
            WHERE {" AND ".join(where)}
            ORDER BY {order}
            LIMIT %(limit)s OFFSET %(offset)s
        ) l ON true
        """,
        params,
        # A prepared statement turns generic after five runs; on large data the generic plan
        # of a filtered list (trigram/tag indexes for any value) is ~40x slower than a custom one.
        prepare=False,
    )


def list_result(rows: list[Row]) -> tuple[str | None, list[Row]] | None:
    """``(caller_role, items)``; ``None`` when the project is not visible in the tenant. Items
    are empty when the caller is not a member (the role is then None). Each item is a
    TaskListItem as it is (``task_schemas.task_list_item`` of the row, without rebuilding it:
    a list answers 50 of them)."""
    if not rows:
        return None
    role = rows[0]["caller_role"]
    items = [r for r in rows if r["id"] is not None]
    for item in items:
        del item["caller_role"]
    return role, items


async def send_recent(conn: Conn, *, tenant_id: str, worker_id: int, limit: int) -> Cursor:
    """The newest tasks, subtasks included, of every project in the tenant the worker is a
    member of."""
    return await conn.execute(
        f"""
        SELECT {_ROW}
        FROM tasks.tasks t
        JOIN tasks.project_members m ON m.project_id = t.project_id AND m.worker_id = %(worker)s
        JOIN tasks.projects p ON p.id = t.project_id AND p.tenant_id = %(tenant)s
                       AND p.deleted_at IS NULL
        {_ENRICH_JOINS}
        ORDER BY t.created_at DESC, t.id DESC
        LIMIT %(limit)s
        """,
        {"tenant": tenant_id, "worker": worker_id, "limit": limit},
    )


# --- deletion ------------------------------------------------------------------------------


async def subtree_ids(conn: Conn, task_id: int) -> list[int]:
    """The task and all its descendants, locked, the task first."""
    cur = await conn.execute(
        """
        WITH RECURSIVE tree(id, depth) AS (
            SELECT id, 0 FROM tasks.tasks WHERE id = %s
            UNION ALL
            SELECT c.id, tree.depth + 1 FROM tasks.tasks c JOIN tree ON c.parent_task_id = tree.id
            WHERE tree.depth < 10000
        )
        SELECT id FROM tree ORDER BY depth, id
        """,
        (task_id,),
    )
    ids = [row["id"] for row in await cur.fetchall()]
    if ids:
        # In id order, so overlapping deletes queue instead of deadlocking.
        await conn.execute(
            "SELECT 1 FROM tasks.tasks WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (ids,)
        )
    return ids


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


# --- recurrence ----------------------------------------------------------------------------


async def series_size(conn: Conn, root_id: int) -> int:
    """Tasks in the series: the original and every occurrence spawned from it."""
    cur = await conn.execute(
        "SELECT 1 + count(*)::int AS n FROM tasks.tasks WHERE recurring_root_id = %s", (root_id,)
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


async def mark_spawned(conn: Conn, task_id: int, now: datetime) -> None:
    await conn.execute(
        "UPDATE tasks.tasks SET has_spawned_next = true, updated_at = %s WHERE id = %s",
        (now, task_id),
    )


async def subtree_below(conn: Conn, task_id: int) -> list[Row]:
    """All descendants of ``task_id`` (parents before children), for cloning."""
    cur = await conn.execute(
        f"""
        WITH RECURSIVE tree(id, depth) AS (
            SELECT id, 1 FROM tasks.tasks WHERE parent_task_id = %s
            UNION ALL
            SELECT c.id, tree.depth + 1 FROM tasks.tasks c JOIN tree ON c.parent_task_id = tree.id
            WHERE tree.depth < 10000
        )
        SELECT {_TASK_FIELDS.format(t="t")}
        FROM tree JOIN tasks.tasks t ON t.id = tree.id
        ORDER BY tree.depth, t.id
        """,
        (task_id,),
    )
    return await cur.fetchall()


async def insert_plain(conn: Conn, values: dict[str, Any]) -> int:
    """Insert a task without building its response row; return its id."""
    columns = list(values)
    cur = await conn.execute(
        f"INSERT INTO tasks.tasks ({', '.join(columns)})"
        f" VALUES ({', '.join(f'%({c})s' for c in columns)}) RETURNING id",
        values,
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["id"])


async def claim_due_recurring(conn: Conn, now: datetime, limit: int) -> list[Row]:
    """Recurring tasks owed a due-date spawn, locked; rows other replicas hold are skipped."""
    cur = await conn.execute(
        f"""
        SELECT {_TASK_FIELDS.format(t="t")}, p.tenant_id
        FROM tasks.tasks t
        JOIN tasks.projects p ON p.id = t.project_id AND p.deleted_at IS NULL
        WHERE t.is_recurring AND NOT t.has_spawned_next
          AND t.recurrence_trigger IN ('on_due_date', 'both')
          AND t.due_date IS NOT NULL AND t.due_date <= %s
          AND t.recurrence_pattern IS NOT NULL
        ORDER BY t.due_date, t.id
        LIMIT %s
        FOR UPDATE OF t SKIP LOCKED
        """,
        (now, limit),
    )
    return await cur.fetchall()
