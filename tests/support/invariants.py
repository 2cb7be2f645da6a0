"""Facts about the stored data that every way of writing it must keep, checked in SQL."""

from __future__ import annotations

from typing import Any

import psycopg

# Every task whose stored subtask roll-up (migration 0021) differs from its direct subtasks'.
ROLLUP_MISMATCHES = """
    SELECT t.id, t.subtask_count, t.subtask_progress_sum, c.n, c.progress
    FROM tasks.tasks t
    LEFT JOIN LATERAL (
        SELECT count(*)::int AS n, coalesce(sum(progress_percent), 0) AS progress
        FROM tasks.tasks c WHERE c.parent_task_id = t.id
    ) c ON true
    WHERE (t.subtask_count, t.subtask_progress_sum) IS DISTINCT FROM (c.n, c.progress)"""


def rollup_mismatches(conn: psycopg.Connection[Any]) -> list[Any]:
    """The tasks whose subtask count or progress sum is not what their subtasks say."""
    return conn.execute(ROLLUP_MISMATCHES).fetchall()
