"""Recurring tasks overdue by centuries, seeded as rows: the scenario of issue 15 finding 1,
shared by ``bench/scheduler_stall.py`` (1,000 + 1 tasks, measured) and
``tests/integration/tasks_api/test_scheduler_catch_up.py`` (200 + 1, checked)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import tuple_row


@dataclass
class OverdueSeries:
    """The recurring tasks seeded: their ids (the year-263 one last) and their grid's second."""

    source_ids: list[int]
    second: int


def seed_overdue_series(
    conn: psycopg.Connection[Any], project_id: int, count: int
) -> OverdueSeries:
    """``count`` minutely recurring tasks due in 1900 and one due in year 263 (trigger
    on_due_date), created by the project's owner, in one transaction. Their minute grid sits
    on the second just before now's, so each next occurrence is about a minute away: long
    enough to check that the catch-up spawned exactly one before the next one is due."""
    second = (datetime.now(UTC).second + 58) % 60
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            """
            INSERT INTO tasks.tasks (project_id, title, is_recurring, recurrence_pattern,
                                     recurrence_trigger, due_date, created_by_id)
            SELECT p.id, d.title, true, '1m', 'on_due_date',
                   d.due + make_interval(secs => %(second)s), p.owner_worker_id
            FROM tasks.projects p
            CROSS JOIN LATERAL (
                SELECT 'Overdue since 1900 #' || g AS title, g AS n,
                       timestamptz '1900-01-01 00:00:00+00' + g * interval '1 minute' AS due
                FROM generate_series(1, %(count)s) g
                UNION ALL
                SELECT 'Overdue since year 263', %(count)s + 1,
                       timestamptz '0263-03-31 08:30:00+00'
            ) d
            WHERE p.id = %(project)s
            ORDER BY d.n
            RETURNING id
            """,
            {"project": project_id, "count": count, "second": second},
        )
        ids = [int(row[0]) for row in cur.fetchall()]
    if len(ids) != count + 1:
        raise RuntimeError(f"seeded {len(ids)} tasks into project {project_id}, not {count + 1}")
    return OverdueSeries(sorted(ids), second)


def caught_up(conn: psycopg.Connection[Any], series: OverdueSeries) -> int:
    """How many seeded tasks the scheduler has handled."""
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            "SELECT count(*) FROM tasks.tasks WHERE id = ANY(%s) AND has_spawned_next",
            (series.source_ids,),
        )
        row = cur.fetchone()
    return int(row[0]) if row else 0


def check_chains(conn: psycopg.Connection[Any], series: OverdueSeries) -> dict[str, Any]:
    """Each chain has exactly one new occurrence, due in the future, within a minute of its
    spawn, on the minute grid of its source."""
    now = datetime.now(UTC)
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            "SELECT s.id, s.due_date, o.due_date, o.created_at FROM tasks.tasks s"
            " LEFT JOIN tasks.tasks o ON o.recurring_root_id = s.id WHERE s.id = ANY(%s)",
            (series.source_ids,),
        )
        rows = cur.fetchall()
    per_chain: dict[int, list[tuple[Any, ...]]] = {}
    for source_id, source_due, due, created in rows:
        per_chain.setdefault(source_id, [])
        if due is not None:
            per_chain[source_id].append((source_due, due, created))
    problems = []
    for source_id, occurrences in per_chain.items():
        if len(occurrences) != 1:
            problems.append(f"task {source_id}: {len(occurrences)} new occurrences")
            continue
        source_due, due, created = occurrences[0]
        if due <= now:
            problems.append(f"task {source_id}: next occurrence {due} is not in the future")
        elif due - created > timedelta(minutes=1):
            problems.append(f"task {source_id}: next occurrence {due} skipped one")
        elif (due - source_due) % timedelta(minutes=1):
            problems.append(f"task {source_id}: next occurrence {due} is off its grid")
    return {"chains": len(per_chain), "ok": not problems, "problems": problems[:10]}
