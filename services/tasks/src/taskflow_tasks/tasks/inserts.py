"""SQL that creates tasks: the API's create (checked and audited in one statement), the plain
inserts of occurrences and clones, and the bulk insert of an import."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from ..outbox.events import OutboxEvent
from .queries import RESPONSE_JOINS, RESPONSE_ROW, TASK_COLUMNS

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]


def _insert_sql(columns: Sequence[str]) -> str:
    """The INSERT of a task with these columns, each bound by name."""
    placeholders = ", ".join(f"%({c})s" for c in columns)
    return f"INSERT INTO tasks.tasks ({', '.join(columns)}) VALUES ({placeholders})"


async def insert_task(conn: Conn, values: dict[str, Any]) -> Row:
    """Insert a task and return its response row."""
    cur = await conn.execute(
        f"WITH t AS ({_insert_sql(list(values))} RETURNING *)"
        f" SELECT {RESPONSE_ROW} FROM t {RESPONSE_JOINS}",
        values,
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def insert_plain(conn: Conn, values: dict[str, Any]) -> int:
    """Insert a task without building its response row; return its id."""
    cur = await conn.execute(_insert_sql(list(values)) + " RETURNING id", values)
    row = await cur.fetchone()
    assert row is not None
    return int(row["id"])


async def next_ids(conn: Conn, count: int) -> list[int]:
    """``count`` task ids drawn from the tasks' sequence, for rows that name each other (a
    subtask its parent) before they are inserted together."""
    cur = await conn.execute(
        "SELECT nextval(pg_get_serial_sequence('tasks.tasks', 'id')) AS id"
        " FROM generate_series(1, %s)",
        (count,),
    )
    return [int(row["id"]) for row in await cur.fetchall()]


async def insert_many(conn: Conn, rows: Sequence[dict[str, Any]]) -> None:
    """Insert tasks as given (ids included), every row with the columns of the first, in one
    round trip: a bulk import."""
    if not rows:
        return
    async with conn.cursor() as cur:
        await cur.executemany(_insert_sql(list(rows[0])), rows)


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
        SELECT acc.caller_role, acc.member_handle, acc.parent_project_id, {TASK_COLUMNS},
               acc.member_handle AS assignee_handle, 0 AS subtask_count,
               NULL::int AS subtask_progress, 0 AS spawn_count
        FROM acc LEFT JOIN t ON true
        """,
        {**values, **event.params(), "_tenant": tenant_id, "_worker": worker_id},
    )
    return await cur.fetchone()
