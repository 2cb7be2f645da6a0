"""Mapping the CLI's data onto the service's model: references, orphans, derived times,
memberships, audit entries and their deterministic event ids."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from taskflow_cli.importer.plan import (
    OWNER_KEY,
    ImportOptions,
    Plan,
    build_plan,
    derive_work_times,
)
from taskflow_cli.importer.source import read_data
from taskflow_cli.importer.timezone import LocalTime, parse_offset

from .test_import_source import files, minimal, task

OPTIONS = ImportOptions("tenant-a", "f" * 64)


def entry(index: int, task_id: int | None, action: str, at: str, **context: Any) -> dict[str, Any]:
    return {
        "id": index,
        "task_id": task_id,
        "project_slug": "p",
        "actor_id": "@a",
        "actor_type": "human",
        "action": action,
        "context": context,
        "timestamp": at,
    }


def plan_of(
    raw: dict[str, Any],
    config: dict[str, Any] | None = None,
    options: ImportOptions = OPTIONS,
    offset: str = "+00:00",
) -> Plan:
    data, problems = read_data(files(raw, config))
    assert [p for p in problems if p.fatal] == []
    return build_plan(data, options, LocalTime(fixed=parse_offset(offset)))


def lines(plan: Plan, fatal: bool = True) -> list[str]:
    return [p.line() for p in plan.problems if p.fatal == fatal]


def test_dangling_parent_and_assignee_and_unknown_project_are_problems() -> None:
    plan = plan_of(
        minimal(
            tasks=[
                task(1, parent_id=99),
                task(2, assigned_to="@ghost"),
                task(3, project_slug="nope"),
            ]
        )
    )
    assert lines(plan) == [
        "problem: tasks[0] (id 1): dangling parent: no task 99 (and no record of its deletion)",
        "problem: tasks[1] (id 2): dangling assignee: no worker @ghost",
        "problem: tasks[2] (id 3): project 'nope' does not exist",
    ]


def test_an_orphaned_subtask_whose_parent_was_deleted_is_imported_without_parent() -> None:
    plan = plan_of(
        minimal(
            tasks=[task(2, parent_id=1, created_at="2025-01-01T10:01:00")],
            audit_logs=[
                entry(1, 1, "created", "2025-01-01T10:00:00"),
                entry(2, 2, "subtask_created", "2025-01-01T10:01:00", parent_id=1),
                entry(3, 1, "deleted", "2025-01-01T10:02:00", title="Task 1"),
            ],
        )
    )
    assert lines(plan) == []
    assert lines(plan, fatal=False) == [
        "warning: tasks[0] (id 2): orphaned subtask: parent 1 was deleted in the CLI; "
        "imported without a parent"
    ]
    assert plan.tasks[0].parent_key is None
    # The deleted task's history is kept, under its CLI id.
    kinds = [(e.entity_type, e.entity_key, e.cli_entity_id) for e in plan.events]
    assert kinds == [("cli_task", None, 1), ("task", "task:2", 2), ("cli_task", None, 1)]


def test_parents_come_before_children_and_cycles_are_refused() -> None:
    plan = plan_of(minimal(tasks=[task(3, parent_id=2), task(2, parent_id=1), task(1)]))
    assert [t.key for t in plan.tasks] == ["task:1", "task:2", "task:3"]
    assert plan.tasks[2].parent_key == "task:2"
    cyclic = plan_of(minimal(tasks=[task(1, parent_id=2), task(2, parent_id=1), task(3)]))
    assert lines(cyclic) == ["problem: tasks[0] (id 1): circular parent chain: 1 -> 2 -> 1"]


def test_a_parent_in_another_project_is_refused() -> None:
    raw = minimal(tasks=[task(1), task(2, parent_id=1, project_slug="q")])
    raw["projects"].append({"slug": "q", "name": "Q"})
    assert lines(plan_of(raw)) == ["problem: tasks[1] (id 2): parent 1 is in project 'p', not 'q'"]


def test_started_and_completed_are_derived_from_the_history() -> None:
    history = [
        entry(1, 1, "created", "2025-01-01T10:00:00"),
        entry(2, 1, "started", "2025-01-01T11:00:00", status="in_progress"),
        entry(3, 1, "review_requested", "2025-01-01T12:00:00", status="review"),
        entry(4, 1, "rejected", "2025-01-01T12:30:00", status="in_progress", reason="no"),
        entry(5, 1, "approved", "2025-01-01T13:00:00", status="completed"),
    ]
    plan = plan_of(
        minimal(tasks=[task(1, status="completed")], audit_logs=history), offset="+01:00"
    )
    planned = plan.tasks[0]
    assert planned.started_at == datetime(2025, 1, 1, 10, 0, tzinfo=UTC)
    assert planned.completed_at == datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert planned.created_at == datetime(2025, 1, 1, 9, 0, tzinfo=UTC)


def test_unknown_times_stay_empty() -> None:
    data, _ = read_data(files(minimal(tasks=[task(1, status="completed")])))
    assert derive_work_times(data.tasks[0], []) == (None, None)
    pending, _ = read_data(files(minimal(tasks=[task(1)])))
    assert derive_work_times(pending.tasks[0], []) == (None, None)


def test_history_of_an_earlier_task_with_a_reused_id_is_not_attached_to_the_new_one() -> None:
    plan = plan_of(
        minimal(
            tasks=[task(1, status="in_progress", created_at="2025-01-02T10:00:00")],
            audit_logs=[
                entry(1, 1, "created", "2025-01-01T10:00:00"),
                entry(2, 1, "started", "2025-01-01T10:30:00"),
                entry(3, 1, "deleted", "2025-01-01T11:00:00"),
                entry(4, 1, "created", "2025-01-02T10:00:00"),
            ],
        )
    )
    assert plan.tasks[0].started_at is None
    assert [e.entity_type for e in plan.events] == ["cli_task", "cli_task", "cli_task", "task"]


def test_recurrence_only_when_one_of_the_nine_patterns() -> None:
    plan = plan_of(minimal(tasks=[task(1, recurrence="weekly"), task(2, recurrence="fortnightly")]))
    assert [(t.is_recurring, t.recurrence_pattern) for t in plan.tasks] == [
        (True, "weekly"),
        (False, None),
    ]
    assert lines(plan, fatal=False) == [
        "warning: tasks[1] (id 2): recurrence 'fortnightly' is not one of 1m, 5m, 10m, 15m, "
        "30m, 1h, daily, weekly, monthly; imported as not recurring"
    ]


def test_memberships_for_assignees_and_creators_and_the_owner_alias() -> None:
    raw = minimal(tasks=[task(1, assigned_to="@b"), task(2, created_by="@b", assigned_to="@c")])
    raw["workers"] += [
        {"id": "@b", "type": "agent", "name": "B", "agent_type": "claude", "capabilities": ["x"]},
        {"id": "@c", "type": "human", "name": "C"},
    ]
    plan = plan_of(raw, config={"current_user": "@a"})
    # @a is the CLI's current user: the importing owner, who owns every project already.
    assert plan.owner_alias is not None and plan.owner_alias.handle == "@a"
    assert [w.key for w in plan.workers] == ["worker:@b", "worker:@c"]
    assert plan.tasks[0].creator_key == OWNER_KEY
    assert [m.key for m in plan.members] == ["member:p:@b", "member:p:@c"]
    assert plan.workers[0].capabilities == ["x"] and plan.workers[0].agent_type == "claude"


def test_user_mapping_overrides_the_owner_alias() -> None:
    options = ImportOptions("tenant-a", "f" * 64, {"@a": "sub-a"})
    plan = plan_of(minimal(), config={"current_user": "@a"}, options=options)
    assert plan.owner_alias is None
    assert plan.workers[0].user_id == "sub-a"


def test_audit_entries_keep_time_actor_and_action_marked_as_imported() -> None:
    history = [entry(1, 1, "progressed", "2025-01-01 10:30:00", progress_percent=20)]
    plan = plan_of(minimal(audit_logs=history), offset="-05:00")
    event = plan.events[0]
    assert event.action == "progressed" and event.actor_handle == "@a"
    assert event.occurred_at == datetime(2025, 1, 1, 15, 30, tzinfo=UTC)
    assert event.details == {
        "progress_percent": 20,
        "imported_from": "cli",
        "cli_audit_id": 1,
        "cli_task_id": 1,
        "cli_project_slug": "p",
        "local_time": "2025-01-01 10:30:00",
        "utc_offset": "-05:00",
    }


def test_event_ids_are_deterministic_per_file_and_tenant() -> None:
    raw = minimal(audit_logs=[entry(1, 1, "created", "2025-01-01T10:00:00")])
    first = plan_of(raw).events[0].event_id
    assert plan_of(raw).events[0].event_id == first
    other_tenant = ImportOptions("tenant-b", "f" * 64)
    assert plan_of(raw, options=other_tenant).events[0].event_id != first
    other_file = ImportOptions("tenant-a", "e" * 64)
    assert plan_of(raw, options=other_file).events[0].event_id != first


def test_emails_and_subjects_only_for_humans_in_the_file() -> None:
    options = ImportOptions("t", "f" * 64, {"@ghost": "sub"}, {"@a": "a@example.test"})
    data, _ = read_data(files(minimal()))
    plan = build_plan(data, options, LocalTime(fixed=parse_offset("+00:00")))
    assert lines(plan) == ["problem: --user @ghost: no worker with this handle in the file"]
    assert plan.workers[0].email == "a@example.test"
