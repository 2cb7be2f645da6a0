"""The task response builders and the schemas that document them agree; LIKE escaping."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import orjson
from taskflow_core.service import dumps_json
from taskflow_tasks.tasks import queries
from taskflow_tasks.tasks.schemas import (
    EXAMPLE_TASK,
    TaskListItemSchema,
    TaskReadSchema,
    task_list_item,
    task_read,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)
ROW = {
    "id": 1, "project_id": 2, "title": "t", "description": None, "status": "pending",
    "priority": "low", "progress_percent": 0, "tags": [], "due_date": None,
    "is_recurring": False, "recurrence_pattern": None, "max_occurrences": None,
    "recurring_root_id": None, "recurrence_trigger": "on_complete",
    "clone_subtasks_on_recur": False, "has_spawned_next": False, "assignee_id": None,
    "assignee_handle": None, "parent_task_id": None, "created_by_id": 3, "started_at": None,
    "completed_at": None, "created_at": NOW, "updated_at": NOW, "subtask_count": 0,
    "subtask_progress": None, "spawn_count": 0,
}  # fmt: skip


def test_builders_match_documented_schemas() -> None:
    assert set(task_read(ROW, [ROW])) == set(TaskReadSchema().fields)
    assert set(task_list_item(ROW)) == set(TaskListItemSchema().fields)
    # The list endpoint answers its rows as they come from SQL: same fields, same order.
    assert tuple(task_list_item(ROW)) == queries.LIST_ITEM_FIELDS
    assert set(EXAMPLE_TASK) == set(TaskReadSchema().fields)
    assert task_read(ROW, [ROW])["subtasks"][0]["subtasks"] == []


def test_timestamps_render_as_isoformat() -> None:
    """Builders keep datetimes; the services' JSON renders them exactly as isoformat()."""
    paris = datetime(2026, 3, 29, 1, 30, 5, 120000, tzinfo=ZoneInfo("Europe/Paris"))
    row = {**ROW, "due_date": paris, "started_at": NOW.replace(microsecond=7)}
    rendered = orjson.loads(dumps_json(task_read(row)))
    assert rendered["created_at"] == "2025-01-01T00:00:00+00:00"
    assert rendered["due_date"] == paris.isoformat() == "2026-03-29T01:30:05.120000+01:00"
    assert rendered["started_at"] == "2025-01-01T00:00:00.000007+00:00"
    assert orjson.loads(dumps_json(task_list_item(row)))["due_date"] == paris.isoformat()


def test_like_pattern_escapes_wildcards() -> None:
    assert queries.like_pattern("100%") == "%100\\%%"
    assert queries.like_pattern("a_b") == "%a\\_b%"
    assert queries.like_pattern("back\\slash") == "%back\\\\slash%"
