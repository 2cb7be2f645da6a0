"""Reading the Phase I CLI's files: JSON errors with line and column, field validation, one
problem per line, and local times converted to UTC."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from taskflow_cli.importer.source import Problem, SourceFiles, locate, parse_json, read_data
from taskflow_cli.importer.timezone import LocalTime, parse_offset


def files(data: Any, config: dict[str, Any] | None = None) -> SourceFiles:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return SourceFiles(
        Path("data.json"), raw, json.dumps(config).encode() if config is not None else None
    )


def task(task_id: int, **fields: Any) -> dict[str, Any]:
    base = {
        "id": task_id,
        "title": f"Task {task_id}",
        "description": None,
        "status": "pending",
        "priority": "medium",
        "progress_percent": 0,
        "project_slug": "p",
        "assigned_to": None,
        "parent_id": None,
        "tags": [],
        "due_date": None,
        "recurrence": None,
        "created_by": "@a",
        "created_at": "2025-01-01T10:00:00",
        "updated_at": "2025-01-01T10:00:00",
    }
    return {**base, **fields}


def minimal(**extra: Any) -> dict[str, Any]:
    return {
        "projects": [{"slug": "p", "name": "P", "description": None}],
        "workers": [
            {
                "id": "@a",
                "type": "human",
                "name": "A",
                "agent_type": None,
                "capabilities": [],
                "created_at": "2025-01-01T09:00:00",
            }
        ],
        "tasks": [task(1)],
        "audit_logs": [],
        **extra,
    }


def fatal_lines(problems: list[Problem]) -> list[str]:
    return [p.line() for p in problems if p.fatal]


def test_invalid_json_reports_line_and_column() -> None:
    result = parse_json(b'{\n  "projects": [\n    {"slug": "a",,}\n  ]\n}', "data.json")
    assert isinstance(result, Problem)
    assert result.line().startswith(
        "problem: data.json: invalid JSON at line 3, column 18: Expecting property name"
    )


def test_empty_file_reads_as_empty_collections() -> None:
    data, problems = read_data(files(b"  \n"))
    assert problems == [] and data.tasks == [] and data.projects == []


def test_not_utf8_is_one_problem() -> None:
    _, problems = read_data(files(b'{"projects": "\xff"}'))
    assert [p.line() for p in problems] == ["problem: data.json: not UTF-8 text (byte 14)"]


def test_a_valid_file_reads_without_problems() -> None:
    data, problems = read_data(files(minimal(), {"current_user": "@a"}))
    assert problems == []
    assert data.tasks[0].created_at == datetime(2025, 1, 1, 10, 0)
    assert data.config.current_user == "@a"


def test_each_bad_field_is_one_line() -> None:
    raw = minimal(
        tasks=[
            task(1, status="done"),
            task(2, priority="urgent"),
            task(3, progress_percent=140),
            task(4, created_at="yesterday"),
            task(5, title=""),
        ]
    )
    _, problems = read_data(files(raw))
    assert fatal_lines(problems) == [
        "problem: tasks[0] (id 1): unknown status 'done' (expected one of pending, "
        "in_progress, review, completed, blocked)",
        "problem: tasks[1] (id 2): unknown priority 'urgent' (expected one of low, medium, "
        "high, critical)",
        "problem: tasks[2] (id 3): progress_percent 140 is outside 0..100",
        "problem: tasks[3] (id 4): created_at 'yesterday' is not an ISO date-time",
        "problem: tasks[4] (id 5): title must not be blank",
    ]


def test_duplicate_ids_of_tasks_workers_and_projects() -> None:
    raw = minimal(
        projects=[{"slug": "p", "name": "P"}, {"slug": "p", "name": "Again"}],
        workers=[
            {"id": "@a", "type": "human", "name": "A"},
            {"id": "@a", "type": "agent", "name": "A2", "agent_type": "claude"},
        ],
        tasks=[task(1), task(1, title="Other")],
    )
    _, problems = read_data(files(raw))
    assert fatal_lines(problems) == [
        "problem: projects[1] (slug p): duplicate project slug 'p' (also projects[0])",
        "problem: workers[1] (@a): duplicate worker id @a (also workers[0])",
        "problem: tasks[1] (id 1): duplicate task id 1 (also tasks[0])",
    ]


def test_duplicate_audit_ids_are_the_clis_own_numbering_not_a_problem() -> None:
    entry = {
        "id": 3,
        "task_id": 1,
        "project_slug": "p",
        "actor_id": "@a",
        "actor_type": "human",
        "action": "created",
        "context": {},
        "timestamp": "2025-01-01T10:00:00",
    }
    data, problems = read_data(files(minimal(audit_logs=[entry, dict(entry)])))
    assert problems == [] and len(data.audit) == 2


def test_bad_worker_fields() -> None:
    raw = minimal(
        workers=[
            {"id": "alice", "type": "human", "name": "A"},
            {"id": "@b", "type": "robot", "name": "B"},
            {"id": "@c", "type": "agent", "name": "C", "agent_type": "gpt"},
        ],
        tasks=[],
    )
    _, problems = read_data(files(raw))
    assert fatal_lines(problems) == [
        "problem: workers[0]: id 'alice' does not match ^@[a-z0-9_-]+$",
        "problem: workers[1] (@b): unknown worker type 'robot' (expected one of human, agent)",
        "problem: workers[2] (@c): unknown agent type 'gpt' (expected one of claude, qwen, "
        "gemini, custom)",
    ]


def test_wrong_shapes() -> None:
    _, problems = read_data(files([1, 2]))
    assert fatal_lines(problems) == ["problem: data.json: must be an object, not a list"]
    _, problems = read_data(files({"tasks": {"id": 1}, "workers": [3]}))
    assert fatal_lines(problems) == [
        "problem: workers[0]: must be an object, not an integer",
        "problem: tasks: must be a list, not an object",
    ]


def test_timestamps_with_a_space_separator_or_a_bare_date_are_read() -> None:
    raw = minimal(tasks=[task(1, created_at="2025-01-01 10:00:00.123456", due_date="2025-02-03")])
    data, problems = read_data(files(raw))
    # Read, and each normalised value reported as a warning naming the task and the value.
    assert [p.line() for p in problems] == [
        "warning: tasks[0] (id 1): created_at '2025-01-01 10:00:00.123456' read as "
        "2025-01-01T10:00:00.123456",
        "warning: tasks[0] (id 1): due_date '2025-02-03' read as 2025-02-03T00:00:00",
    ]
    assert data.tasks[0].created_at == datetime(2025, 1, 1, 10, 0, 0, 123456)
    assert data.tasks[0].due_date == datetime(2025, 2, 3)


def test_locate_accepts_the_folder_its_data_json_or_the_folder_above(tmp_path: Path) -> None:
    folder = tmp_path / ".taskflow"
    folder.mkdir()
    (folder / "data.json").write_text("{}")
    (folder / "config.json").write_text('{"current_user": "@a"}')
    for path in (tmp_path, folder, folder / "data.json"):
        found = locate(path)
        assert isinstance(found, SourceFiles) and found.config is not None
    missing = locate(tmp_path / "nowhere")
    assert isinstance(missing, Problem) and "no such file" in missing.line()


@pytest.mark.parametrize(
    ("text", "hours"),
    [("+02:00", 2), ("-05:30", -5.5), ("+0530", 5.5), ("+2", 2), ("UTC", 0), ("Z", 0)],
)
def test_utc_offsets(text: str, hours: float) -> None:
    assert parse_offset(text).utcoffset(None) == timedelta(hours=hours)


def test_bad_utc_offset_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_offset("Europe/Paris")


def test_local_times_become_utc_with_the_offset_used_stated() -> None:
    clock = LocalTime(fixed=parse_offset("+02:00"))
    assert clock.to_utc(datetime(2025, 1, 1, 10, 0)) == datetime(2025, 1, 1, 8, 0, tzinfo=UTC)
    # A value that carries its own offset keeps it.
    aware = datetime(2025, 1, 1, 10, 0, tzinfo=timezone(timedelta(hours=-1)))
    assert clock.to_utc(aware) == datetime(2025, 1, 1, 11, 0, tzinfo=UTC)
    assert clock.describe() == "local times read as UTC+02:00 (--utc-offset)"


def test_machine_zone_rules_apply_per_timestamp() -> None:
    from zoneinfo import ZoneInfo

    clock = LocalTime(zone=ZoneInfo("Europe/Berlin"))
    assert clock.to_utc(datetime(2025, 1, 15, 12)) == datetime(2025, 1, 15, 11, tzinfo=UTC)
    assert clock.to_utc(datetime(2025, 7, 15, 12)) == datetime(2025, 7, 15, 10, tzinfo=UTC)
    assert "offsets used: +01:00, +02:00" in clock.describe()
