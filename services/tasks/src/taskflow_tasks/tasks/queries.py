"""SQL reads of tasks. Every read returns the response row in one statement: the task, its
assignee handle, its subtask roll-up (kept on the task by migration 0021's triggers) and its
series' spawn count, with the caller's access folded in (project in the caller's tenant → else
no row; ``caller_role`` NULL → not a member).

The column lists and joins below are shared by every task statement (``store`` for the
writes, ``recurrence.store`` for the series)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]
Cursor = psycopg.AsyncCursor[Any]

# Every column of a task aliased ``t``.
TASK_COLUMNS = """
    t.id, t.project_id, t.title, t.description, t.status, t.priority,
    t.progress_percent, t.tags, t.due_date, t.is_recurring, t.recurrence_pattern,
    t.max_occurrences, t.recurring_root_id, t.recurrence_trigger,
    t.clone_subtasks_on_recur, t.has_spawned_next, t.assignee_id, t.parent_task_id,
    t.created_by_id, t.started_at, t.completed_at, t.created_at, t.updated_at"""

# The response row of a task aliased ``t``: needs RESPONSE_JOINS.
RESPONSE_ROW = (
    TASK_COLUMNS
    + """,
    a.handle AS assignee_handle,
    t.subtask_count,
    CASE WHEN t.subtask_count > 0
         THEN (t.subtask_progress_sum / t.subtask_count)::int END AS subtask_progress,
    CASE WHEN t.is_recurring OR t.recurring_root_id IS NOT NULL OR t.has_spawned_next
         THEN (SELECT count(*)::int FROM tasks.tasks r
               WHERE r.recurring_root_id = coalesce(t.recurring_root_id, t.id))
         ELSE 0 END AS spawn_count"""
)
RESPONSE_JOINS = """
    LEFT JOIN tasks.workers a ON a.id = t.assignee_id"""
ACCESS_JOINS = """
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
        SELECT {RESPONSE_ROW}, m.role AS caller_role
        FROM tasks.tasks t {ACCESS_JOINS} {RESPONSE_JOINS}
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


def lock_subtrees(roots: str) -> str:
    """A statement locking the tasks whose WHERE is ``roots`` and all their descendants, each
    row ``(id, depth)``. Leaves first (deeper first, then by id), the roots last: a subtask's
    write locks its own row and then, by migration 0021's trigger, its parent's, so a delete
    holding a parent while it waited for a child would deadlock with it. A task delete and a
    forced project delete both lock through here, in this one order, so overlapping deletes
    queue instead."""
    return f"""
        WITH RECURSIVE tree(id, depth) AS (
            SELECT id, 0 FROM tasks.tasks WHERE {roots}
            UNION ALL
            SELECT c.id, tree.depth + 1 FROM tasks.tasks c JOIN tree ON c.parent_task_id = tree.id
            WHERE tree.depth < 10000
        )
        SELECT t.id, tree.depth FROM tasks.tasks t JOIN tree USING (id)
        ORDER BY tree.depth DESC, t.id FOR UPDATE OF t
        """


async def parent_project(conn: Conn, parent_id: int) -> int | None:
    cur = await conn.execute("SELECT project_id FROM tasks.tasks WHERE id = %s", (parent_id,))
    row = await cur.fetchone()
    return None if row is None else row["project_id"]


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


# The TaskListItem fields in its order (a unit test holds it to schemas.task_list_item),
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
    """One page of the project's tasks with the caller's role; read with :func:`list_result`.

    Planned once per connection either way (prepared by psycopg after a few runs, never behind
    PgBouncer): a list whose plan does not depend on its values is one statement; any other
    has the ids of its page chosen by ``tasks.list_page_ids`` (migration 0022), planned for
    its values at each call, and reads their rows by primary key."""
    order = _ORDERS[(filters.sort_by, filters.sort_order)]
    params: dict[str, Any] = {"pid": project_id, "tenant": tenant_id, "worker": worker_id}
    if _plan_is_value_independent(filters) and filters.offset == 0:
        acc, page_ids = "acc AS", ""
        where = ["t.project_id = acc.id"]
        if filters.status:
            where.append("t.status = %(status)s")
            params["status"] = filters.status
        if filters.has_due_date is not None:
            where.append(_DUE_DATE[filters.has_due_date])
        # LIMIT as a literal (an int from the validated query): with a parameter PostgreSQL
        # costs the generic plan for an unknown LIMIT, finds it dearer than the custom plans of
        # LIMIT 50 and plans every run again (pg_prepared_statements: generic_plans 0; 0.33-0.44
        # ms of planning per list, bench --pg-stats with track_planning).
        page = f"LIMIT {int(filters.limit)}"
    else:
        # Materialized: the page is chosen once, whatever plan the rows get (inlined, the call
        # could become a filter evaluated for each task a scan reads).
        acc = "acc AS MATERIALIZED"
        page_ids = """,
                   CASE WHEN m.role IS NOT NULL THEN tasks.list_page_ids(
                       %(page_query)s::text, p.id, %(status)s::text, %(assignee)s::bigint,
                       %(priority)s::text, %(search)s::text, string_to_array(%(tags)s::text, ','),
                       %(limit)s::int, %(offset)s::int) END AS page_ids"""
        where = ["t.id = ANY(acc.page_ids)", "t.project_id = acc.id"]
        page = ""
        params.update(
            page_query=_page_query(filters, order),
            status=filters.status,
            assignee=filters.assignee_id,
            priority=filters.priority,
            search=like_pattern(filters.search) if filters.search else None,
            # Joined: no tag holds a comma (the query's tags are split on them), and a str
            # costs psycopg 14-17 us less per list than dumping a list as text[].
            tags=",".join(filters.tags) or None,
            limit=filters.limit,
            offset=filters.offset,
        )
    return await conn.execute(
        f"""
        WITH {acc} (
            SELECT p.id, m.role AS caller_role{page_ids}
            FROM tasks.projects p
            LEFT JOIN tasks.project_members m ON m.project_id = p.id AND m.worker_id = %(worker)s
            WHERE p.id = %(pid)s AND p.tenant_id = %(tenant)s AND p.deleted_at IS NULL
        )
        SELECT acc.caller_role, {_LIST_ITEM}
        FROM acc LEFT JOIN LATERAL (
            SELECT {RESPONSE_ROW}
            FROM tasks.tasks t {RESPONSE_JOINS}
            WHERE {" AND ".join(where)} AND acc.caller_role IS NOT NULL
            ORDER BY {order}
            {page}
        ) l ON true
        """,
        params,
    )


_DUE_DATE = {True: "t.due_date IS NOT NULL", False: "t.due_date IS NULL"}


def _page_query(filters: ListFilters, order: str) -> str:
    """The statement ``tasks.list_page_ids`` runs for these filters: fixed fragments only, the
    values are its parameters $1 (project) to $8 (offset), in the function's order.

    The project is hidden from the planner (``(SELECT $1)``), as it was when the page was a
    lateral join on the access check: PostgreSQL then walks the project's index in the list's
    order and stops at the page, where with the project known it read and sorted every task of
    a project holding a third of the table (a search: ILIKE on all 812 tasks of the small bench
    set, 0.35 ms, against 0.2 ms for the 174 it walks)."""
    where = ["t.project_id = (SELECT $1)"]
    if filters.status:
        where.append("t.status = $2")
    if filters.assignee_id:
        where.append("t.assignee_id = $3")
    if filters.priority:
        where.append("t.priority = $4")
    if filters.search:
        where.append("t.title ILIKE $5 ESCAPE '\\'")
    if filters.tags:
        where.append("t.tags @> $6")
    if filters.has_due_date is not None:
        where.append(_DUE_DATE[filters.has_due_date])
    return (
        f"SELECT ARRAY(SELECT t.id FROM tasks.tasks t WHERE {' AND '.join(where)}"
        f" ORDER BY {order} LIMIT $7 OFFSET $8)"
    )


def _plan_is_value_independent(filters: ListFilters) -> bool:
    """Whether the whole list statement can have one plan for every value. A prepared statement
    turns generic after five runs: on large data the generic plan of a filtered list
    (trigram/tag indexes for any value) is ~40x slower than a custom one, so those have their
    page chosen by ``tasks.list_page_ids``. A list filtered by project alone (any order, due
    date present or not) has one good plan, an index on (project_id, order key): prepared (its
    first page, see send_list), PostgreSQL neither parses nor plans it again, which was 70 % of
    its time on the list (planning 0.36 ms, execution 0.15 ms on the small data set). So has a
    status in the default order, whatever the status: (project_id, status, created_at, id)
    walked for 50 rows (generic plans on both bench data sets, each status value, due date or
    not: 4-100 buffers; planning was 0.4-1.0 ms of PostgreSQL per such list)."""
    if filters.assignee_id or filters.priority or filters.search or filters.tags:
        return False
    return not filters.status or filters.sort_by == "created_at"


def list_result(rows: list[Row]) -> tuple[str | None, list[Row]] | None:
    """``(caller_role, items)``; ``None`` when the project is not visible in the tenant. Items
    are empty when the caller is not a member (the role is then None). Each item is a
    TaskListItem as it is (``schemas.task_list_item`` of the row, without rebuilding it:
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
        SELECT {RESPONSE_ROW}
        FROM tasks.tasks t
        JOIN tasks.project_members m ON m.project_id = t.project_id AND m.worker_id = %(worker)s
        JOIN tasks.projects p ON p.id = t.project_id AND p.tenant_id = %(tenant)s
                       AND p.deleted_at IS NULL
        {RESPONSE_JOINS}
        ORDER BY t.created_at DESC, t.id DESC
        LIMIT %(limit)s
        """,
        {"tenant": tenant_id, "worker": worker_id, "limit": limit},
    )
