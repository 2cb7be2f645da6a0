"""SQL of recurring series: their size, the due tasks the scheduler claims, the subtree an
occurrence clones, and the occurrence rows themselves."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from ..tasks.queries import TASK_COLUMNS

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]


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
        SELECT {TASK_COLUMNS}
        FROM tree JOIN tasks.tasks t ON t.id = tree.id
        ORDER BY tree.depth, t.id
        """,
        (task_id,),
    )
    return await cur.fetchall()


async def claim_due_recurring(conn: Conn, now: datetime, limit: int) -> list[Row]:
    """Recurring tasks owed a due-date spawn, locked; rows other replicas hold are skipped."""
    cur = await conn.execute(
        f"""
        SELECT {TASK_COLUMNS}, p.tenant_id
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
