"""Two users in two tenants plus a non-member in the same tenant: for every task endpoint that
takes an id, nothing is read or written across a tenant (404) or a membership (403)."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.integration.tasks_api.conftest import MakeUser, Outbox


def _attempts(pid: int, tid: int) -> list[tuple[str, str, Any]]:
    return [
        ("GET", f"/api/projects/{pid}/tasks", None),
        ("POST", f"/api/projects/{pid}/tasks", {"title": "intruder"}),
        ("GET", f"/api/tasks/{tid}", None),
        ("PUT", f"/api/tasks/{tid}", {"title": "intruder"}),
        ("PATCH", f"/api/tasks/{tid}/status", {"status": "in_progress"}),
        ("PATCH", f"/api/tasks/{tid}/progress", {"percent": 10}),
        ("PATCH", f"/api/tasks/{tid}/assign", {"assignee_id": None}),
        ("POST", f"/api/tasks/{tid}/subtasks", {"title": "intruder"}),
        ("POST", f"/api/tasks/{tid}/approve", None),
        ("POST", f"/api/tasks/{tid}/reject", {"reason": "no"}),
        ("DELETE", f"/api/tasks/{tid}", None),
    ]


def _snapshot(db: psycopg.Connection[Any]) -> list[Any]:
    return db.execute("SELECT * FROM tasks.tasks ORDER BY id").fetchall()


def test_other_tenant_sees_nothing(
    make_user: MakeUser, outbox: Outbox, db: psycopg.Connection[Any]
) -> None:
    alice = make_user(tenant="tenant-a")
    mallory = make_user(tenant="tenant-b")
    pid = alice.default_project
    tid = alice.task(pid, tags=["secret"])["id"]
    alice.patch(f"/api/tasks/{tid}/status", {"status": "in_progress"})
    mallory.get("/api/projects")
    before = _snapshot(db)
    outbox.start()
    for method, path, body in _attempts(pid, tid):
        resp = mallory.request(method, path, json=body)
        assert resp.status_code == 404, (method, path, resp.text)
        expected = "Project not found" if path.startswith("/api/projects") else "Task not found"
        if path.endswith("/subtasks"):
            expected = "Parent task not found"
        assert resp.json()["error"] == expected, (method, path)
    assert mallory.get("/api/tasks/recent").json() == []
    assert _snapshot(db) == before
    assert outbox.new() == []


def test_same_user_in_another_tenant_sees_nothing(make_user: MakeUser) -> None:
    """Membership is not enough: a task of tenant A is not reachable with a tenant B token."""
    alice = make_user(tenant="tenant-a")
    tid = alice.task(alice.default_project)["id"]
    alice_b = make_user(tenant="tenant-b", sub=alice.sub)
    assert alice_b.get(f"/api/tasks/{tid}").status_code == 404
    assert alice_b.get("/api/tasks/recent").json() == []


def test_non_member_in_same_tenant_is_refused(
    make_user: MakeUser, outbox: Outbox, db: psycopg.Connection[Any]
) -> None:
    alice = make_user(tenant="tenant-a")
    eve = make_user(tenant="tenant-a")
    pid = alice.default_project
    tid = alice.task(pid)["id"]
    eve.get("/api/projects")
    before = _snapshot(db)
    outbox.start()
    for method, path, body in _attempts(pid, tid):
        resp = eve.request(method, path, json=body)
        assert resp.status_code == 403, (method, path, resp.text)
        assert resp.json()["error"] == "Not a member of this project"
    assert eve.get("/api/tasks/recent").json() == []
    assert _snapshot(db) == before
    assert outbox.new() == []


def test_recent_lists_only_own_tenant_memberships(make_user: MakeUser) -> None:
    alice = make_user(tenant="tenant-a")
    bob = make_user(tenant="tenant-a")
    mine = [alice.task(alice.default_project, title=f"t{i}")["id"] for i in range(3)]
    bob.task(bob.default_project)
    recent = alice.get("/api/tasks/recent", params={"limit": 2}).json()
    assert [t["id"] for t in recent] == mine[::-1][:2]
    assert {t["id"] for t in alice.get("/api/tasks/recent").json()} == set(mine)
