"""Recurring tasks: spawning on completion and when due, max_occurrences, subtask cloning,
spawn_count, and the due-date scheduler inside the service."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from tests.integration.tasks_api.conftest import MakeUser, Outbox, User


def _series(user: User, pid: int) -> list[dict[str, Any]]:
    tasks = user.get(f"/api/projects/{pid}/tasks", params={"sort_order": "asc"}).json()
    return [t for t in tasks if t["parent_task_id"] is None]


def test_completion_spawns_next_with_calendar_month(make_user: MakeUser, outbox: Outbox) -> None:
    alice = make_user()
    pid = alice.default_project
    root = alice.task(
        pid, title="Pay rent", recurrence_pattern="monthly", due_date="2031-01-31T09:00:00Z"
    )
    outbox.start()
    done = alice.patch(f"/api/tasks/{root['id']}/status", {"status": "completed"}).json()
    assert done["has_spawned_next"] is True and done["spawn_count"] == 1
    series = _series(alice, pid)
    assert len(series) == 2
    nxt = alice.get(f"/api/tasks/{series[1]['id']}").json()
    assert nxt["due_date"] == "2031-02-28T09:00:00+00:00"
    assert nxt["recurring_root_id"] == root["id"] and nxt["status"] == "pending"
    assert nxt["spawn_count"] == 1 and nxt["recurrence_pattern"] == "monthly"
    assert alice.get(f"/api/tasks/{root['id']}").json()["spawn_count"] == 1
    actions = [(e["entity_id"], e["action"]) for e in outbox.new()]
    assert actions == [(nxt["id"], "recurring_spawn"), (root["id"], "status_changed")]
    # Re-completing after a reopen does not spawn twice.
    alice.patch(f"/api/tasks/{root['id']}/status", {"status": "review"})
    alice.post(f"/api/tasks/{root['id']}/approve")
    assert len(_series(alice, pid)) == 2


def test_max_occurrences_counts_the_whole_series(make_user: MakeUser) -> None:
    alice = make_user()
    pid = alice.default_project
    current = alice.task(pid, recurrence_pattern="daily", max_occurrences=3)["id"]
    for _ in range(4):
        alice.patch(f"/api/tasks/{current}/status", {"status": "completed"})
        pending = [t for t in _series(alice, pid) if t["status"] == "pending"]
        if not pending:
            break
        current = pending[0]["id"]
    assert len(_series(alice, pid)) == 3  # the original + 2 occurrences


def test_on_due_date_trigger_does_not_spawn_on_completion(make_user: MakeUser) -> None:
    alice = make_user()
    pid = alice.default_project
    far = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    tid = alice.task(pid, recurrence_pattern="daily", recurrence_trigger="on_due_date",
                     due_date=far)["id"]  # fmt: skip
    alice.patch(f"/api/tasks/{tid}/status", {"status": "completed"})
    assert len(_series(alice, pid)) == 1


def test_clone_subtasks_on_recur(make_user: MakeUser, outbox: Outbox) -> None:
    alice = make_user()
    pid = alice.default_project
    root = alice.task(pid, recurrence_pattern="weekly", clone_subtasks_on_recur=True)["id"]
    kid = alice.post(f"/api/tasks/{root}/subtasks", {"title": "step 1"}).json()["id"]
    alice.post(f"/api/tasks/{kid}/subtasks", {"title": "step 1a"})
    alice.patch(f"/api/tasks/{kid}/status", {"status": "completed"})
    outbox.start()
    alice.patch(f"/api/tasks/{root}/status", {"status": "completed"})
    nxt = next(t for t in _series(alice, pid) if t["id"] != root)
    got = alice.get(f"/api/tasks/{nxt['id']}").json()
    assert [s["title"] for s in got["subtasks"]] == ["step 1"]
    clone = got["subtasks"][0]
    assert clone["status"] == "pending" and clone["progress_percent"] == 0
    assert clone["is_recurring"] is False
    grand = alice.get(f"/api/tasks/{clone['id']}").json()["subtasks"]
    assert [g["title"] for g in grand] == ["step 1a"]
    actions = sorted(e["action"] for e in outbox.new())
    assert actions == ["cloned_subtask", "cloned_subtask", "recurring_spawn", "status_changed"]


def test_scheduler_spawns_due_tasks_once(
    make_user: MakeUser, outbox: Outbox, db: psycopg.Connection[Any]
) -> None:
    alice = make_user()
    pid = alice.default_project
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    root = alice.task(pid, recurrence_pattern="1h", recurrence_trigger="both", due_date=soon,
                      max_occurrences=5)  # fmt: skip
    outbox.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if alice.get(f"/api/tasks/{root['id']}").json()["has_spawned_next"]:
            break
        time.sleep(0.2)
    time.sleep(1.0)  # a few more scheduler rounds: still exactly one occurrence
    series = _series(alice, pid)
    assert len(series) == 2
    nxt = series[1]
    assert datetime.fromisoformat(nxt["due_date"]) > datetime.now(UTC)
    events = outbox.new()
    assert [(e["entity_id"], e["action"], e["actor_type"]) for e in events] == [
        (nxt["id"], "spawned_recurring", "system"),
        (root["id"], "updated", "system"),
    ]
    assert events[0]["details"]["spawned_from"] == root["id"]
    # Completing the source later does not spawn again (both triggers share the flag).
    alice.patch(f"/api/tasks/{root['id']}/status", {"status": "completed"})
    assert len(_series(alice, pid)) == 2


def test_scheduler_stops_a_full_series(make_user: MakeUser, outbox: Outbox) -> None:
    alice = make_user()
    pid = alice.default_project
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    root = alice.task(pid, recurrence_pattern="daily", recurrence_trigger="on_due_date",
                      due_date=soon, max_occurrences=1)  # fmt: skip
    outbox.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if alice.get(f"/api/tasks/{root['id']}").json()["has_spawned_next"]:
            break
        time.sleep(0.2)
    assert len(_series(alice, pid)) == 1
    (event,) = outbox.new()
    assert event["entity_id"] == root["id"] and event["action"] == "updated"
    assert event["details"]["reason"] == "max_occurrences reached"


def test_recurring_needs_a_pattern_on_create_and_update(
    make_user: MakeUser, outbox: Outbox, tasks_url: str
) -> None:
    alice = make_user()
    pid = alice.default_project
    refused = alice.post(f"/api/projects/{pid}/tasks", {"title": "R", "is_recurring": True})
    assert refused.status_code == 422
    assert refused.json()["error"].endswith("recurrence_pattern required when is_recurring is True")
    plain = alice.task(pid, title="Plain")
    outbox.start()
    # The body alone breaks the rule: 422. Valid alone, invalid for this task: 400.
    both = alice.put(
        f"/api/tasks/{plain['id']}", {"is_recurring": True, "recurrence_pattern": None}
    )
    assert both.status_code == 422
    alone = alice.put(f"/api/tasks/{plain['id']}", {"is_recurring": True})
    assert alone.status_code == 400
    assert (
        alone.json()["error"]
        == "Value error, recurrence_pattern required when is_recurring is True"
    )
    assert alice.get(f"/api/tasks/{plain['id']}").json()["is_recurring"] is False
    assert outbox.new() == []
    # The rule is published in the OpenAPI document, so clients and fuzzers can follow it.
    import httpx

    components = httpx.get(f"{tasks_url}/openapi.json").json()["components"]["schemas"]
    create_rule = components["TaskCreate"]["then"]
    assert create_rule["required"] == ["recurrence_pattern"]
    assert components["TaskUpdate"]["if"]["properties"]["is_recurring"] == {"const": True}
