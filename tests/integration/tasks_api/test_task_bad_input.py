"""Bad input on every task write endpoint: a 4xx with a message, and nothing written."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.integration.tasks_api.conftest import MakeUser, Outbox

LONG = "x" * 501

# (method, path template, body) — {pid} and {tid} are filled in; body "RAW:" is sent as is.
CASES: list[tuple[str, str, Any]] = [
    ("POST", "/api/projects/{pid}/tasks", {"title": "ok", "bogus": 1}),
    ("POST", "/api/projects/{pid}/tasks", {"title": 5}),
    ("POST", "/api/projects/{pid}/tasks", {"title": LONG}),
    ("POST", "/api/projects/{pid}/tasks", {"title": ""}),
    ("POST", "/api/projects/{pid}/tasks", {"title": "   "}),
    ("POST", "/api/projects/{pid}/tasks", {}),
    ("POST", "/api/projects/{pid}/tasks", {"title": "ok", "priority": "urgent"}),
    ("POST", "/api/projects/{pid}/tasks", {"title": "ok", "tags": "a,b"}),
    ("POST", "/api/projects/{pid}/tasks", {"title": "ok", "due_date": "tomorrow"}),
    ("POST", "/api/projects/{pid}/tasks", {"title": "ok", "is_recurring": True}),
    ("POST", "/api/projects/{pid}/tasks", {"title": "ok", "max_occurrences": 0}),
    ("POST", "/api/projects/{pid}/tasks", {"title": "ok", "assignee_id": "1"}),
    ("POST", "/api/projects/{pid}/tasks", "RAW:{not json"),
    ("POST", "/api/projects/{pid}/tasks", "RAW:[1, 2]"),
    ("POST", "/api/projects/abc/tasks", {"title": "ok"}),
    ("POST", "/api/projects/-1/tasks", {"title": "ok"}),
    ("PUT", "/api/tasks/{tid}", {"title": LONG}),
    ("PUT", "/api/tasks/{tid}", {"title": ""}),
    ("PUT", "/api/tasks/{tid}", {"status": "completed"}),
    ("PUT", "/api/tasks/{tid}", {"tags": [1]}),
    ("PUT", "/api/tasks/{tid}", {"is_recurring": True}),
    ("PUT", "/api/tasks/{tid}", "RAW:{"),
    ("PUT", "/api/tasks/abc", {"title": "ok"}),
    ("PATCH", "/api/tasks/{tid}/status", {"status": "done"}),
    ("PATCH", "/api/tasks/{tid}/status", {}),
    ("PATCH", "/api/tasks/{tid}/status", {"status": "in_progress", "extra": 1}),
    ("PATCH", "/api/tasks/{tid}/progress", {"percent": 101}),
    ("PATCH", "/api/tasks/{tid}/progress", {"percent": -1}),
    ("PATCH", "/api/tasks/{tid}/progress", {"percent": "50"}),
    ("PATCH", "/api/tasks/{tid}/progress", {"percent": 5, "note": LONG}),
    ("PATCH", "/api/tasks/{tid}/assign", {}),
    ("PATCH", "/api/tasks/{tid}/assign", {"assignee_id": "me"}),
    ("PATCH", "/api/tasks/{tid}/assign", {"assignee_id": 999999}),
    ("PATCH", "/api/tasks/1.5/assign", {"assignee_id": None}),
    ("POST", "/api/tasks/{tid}/subtasks", {"title": ""}),
    ("POST", "/api/tasks/{tid}/subtasks", {"title": "ok", "nope": True}),
    ("POST", "/api/tasks/{tid}/reject", {}),
    ("POST", "/api/tasks/{tid}/reject", {"reason": LONG}),
    ("POST", "/api/tasks/{tid}/approve", None),  # not in review
    ("DELETE", "/api/tasks/abc", None),
]


@pytest.fixture
def world(make_user: MakeUser) -> dict[str, Any]:
    alice = make_user()
    pid = alice.default_project
    tid = alice.task(pid)["id"]
    return {"user": alice, "pid": pid, "tid": tid}


def test_bad_input_is_refused_and_writes_nothing(
    world: dict[str, Any], outbox: Outbox, db: psycopg.Connection[Any]
) -> None:
    alice = world["user"]
    before = db.execute("SELECT * FROM tasks.tasks ORDER BY id").fetchall()
    outbox.start()
    for method, template, body in CASES:
        path = template.format(pid=world["pid"], tid=world["tid"])
        if isinstance(body, str) and body.startswith("RAW:"):
            resp = alice.request(
                method, path, content=body[4:], headers={"Content-Type": "application/json"}
            )
        else:
            resp = alice.request(method, path, json=body)
        assert 400 <= resp.status_code < 500, (method, path, body, resp.status_code)
        error = resp.json()
        assert error["error"] and error["status_code"] == resp.status_code, error
    assert db.execute("SELECT * FROM tasks.tasks ORDER BY id").fetchall() == before
    assert outbox.new() == []


def test_field_errors_are_listed(world: dict[str, Any]) -> None:
    resp = world["user"].post(
        f"/api/projects/{world['pid']}/tasks", {"title": "", "priority": "x", "junk": 1}
    )
    assert resp.status_code == 422
    fields = {tuple(item["loc"]) for item in resp.json()["detail"]}
    assert {("body", "title"), ("body", "priority"), ("body", "junk")} <= fields


BAD_LIST_QUERIES: list[dict[str, Any]] = [
    {"limit": -1},
    {"limit": 0},
    {"limit": 101},
    {"limit": 10**12},
    {"offset": -5},
    {"status": "nope"},
    {"sort_by": "id; DROP TABLE x"},
    {"sort_order": "sideways"},
    {"search": "s" * 201},
    {"has_due_date": "maybe"},
]


def test_bad_list_and_recent_queries(world: dict[str, Any]) -> None:
    alice = world["user"]
    for params in BAD_LIST_QUERIES:
        resp = alice.get(f"/api/projects/{world['pid']}/tasks", params=params)
        assert resp.status_code == 422, (params, resp.text)
        assert resp.json()["error"]
    for limit in (-1, 0, 51):
        assert alice.get("/api/tasks/recent", params={"limit": limit}).status_code == 422
