"""More reference behaviours (§1.6, §5.1): checks and messages on create/assign/subtasks,
list filters and sorts, delete cascade, audit details with client info."""

from __future__ import annotations

from tests.integration.tasks_api.conftest import MakeUser, Outbox


def test_create_checks_and_messages(make_user: MakeUser) -> None:
    alice, bob = make_user(), make_user()
    pid = alice.default_project
    bob.get("/api/projects")
    outsider = bob.get(f"/api/projects/{bob.default_project}/members").json()[0]["worker_id"]
    resp = alice.post(f"/api/projects/{pid}/tasks", {"title": "t", "assignee_id": outsider})
    assert resp.status_code == 400
    assert resp.json()["error"] == f"Worker {outsider} is not a member of this project"
    resp = alice.post(f"/api/projects/{pid}/tasks", {"title": "t", "parent_task_id": 999999})
    assert resp.json()["error"] == "Parent task 999999 not found"
    other_project = alice.new_project()
    foreign = alice.task(other_project)["id"]
    resp = alice.post(f"/api/projects/{pid}/tasks", {"title": "t", "parent_task_id": foreign})
    assert resp.json()["error"] == "Parent task must be in the same project"
    assert alice.post("/api/projects/999999/tasks", {"title": "t"}).json()["error"] == (
        "Project not found"
    )
    missing = alice.post("/api/tasks/999999/subtasks", {"title": "t"})
    assert missing.status_code == 404 and missing.json()["error"] == "Parent task not found"
    # 0 means "nobody" / "top level", as in the old API.
    zero = alice.task(pid, assignee_id=0, parent_task_id=0)
    assert zero["assignee_id"] is None and zero["parent_task_id"] is None
    tid = zero["id"]
    resp = alice.patch(f"/api/tasks/{tid}/assign", {"assignee_id": outsider})
    assert resp.status_code == 400
    assert resp.json()["error"] == f"Worker {outsider} is not a member of this project"
    assert alice.get("/api/tasks/999999").json()["error"] == "Task not found"


def test_direct_completion_and_subtask_fields(make_user: MakeUser, outbox: Outbox) -> None:
    alice = make_user()
    pid = alice.default_project
    tid = alice.task(pid)["id"]
    done = alice.patch(f"/api/tasks/{tid}/status", {"status": "completed"}).json()
    assert done["status"] == "completed" and done["progress_percent"] == 100
    assert done["completed_at"] is not None and done["started_at"] is None
    same = alice.patch(f"/api/tasks/{tid}/status", {"status": "completed"})
    assert same.status_code == 400
    outbox.start()
    sub = alice.post(
        f"/api/tasks/{tid}/subtasks", {"title": "kid", "priority": "critical", "tags": ["x"]}
    )
    assert sub.status_code == 201
    body = sub.json()
    assert body["parent_task_id"] == tid and body["project_id"] == pid
    assert body["priority"] == "critical" and body["tags"] == ["x"]
    (event,) = outbox.new()
    assert (event["entity_id"], event["action"]) == (body["id"], "created")
    assert event["details"]["is_subtask"] is True and event["details"]["parent_task_id"] == tid
    # Only the methods each route documents exist (no stray responders).
    assert alice.get(f"/api/tasks/{tid}/subtasks").status_code == 405
    assert alice.get(f"/api/tasks/{tid}/approve").status_code == 405


def test_list_filters_and_sorts(make_user: MakeUser) -> None:
    alice = make_user()
    pid = alice.default_project
    members = alice.get(f"/api/projects/{pid}/members").json()
    me = members[0]["worker_id"]
    a = alice.task(pid, title="Bravo", priority="low", tags=["x", "y"], due_date="2030-01-02")
    b = alice.task(pid, title="alpha", priority="critical", tags=["x"], assignee_id=me)
    c = alice.task(pid, title="Charlie", priority="high", due_date="2030-01-01")
    alice.patch(f"/api/tasks/{c['id']}/status", {"status": "in_progress"})

    def ids(**params: object) -> list[int]:
        resp = alice.get(f"/api/projects/{pid}/tasks", params=params)
        assert resp.status_code == 200, resp.text
        return [t["id"] for t in resp.json()]

    assert ids() == [c["id"], b["id"], a["id"]]  # newest first
    assert ids(sort_order="asc") == [a["id"], b["id"], c["id"]]
    assert ids(status="in_progress") == [c["id"]]
    assert ids(priority="critical") == [b["id"]]
    assert ids(assignee_id=me) == [b["id"]]
    assert ids(tags="x") == [b["id"], a["id"]]
    assert ids(tags="x, y") == [a["id"]]
    assert ids(tags="z") == []
    assert ids(has_due_date="true") == [c["id"], a["id"]]
    assert ids(has_due_date="false") == [b["id"]]
    assert ids(search="ALP") == [b["id"]]
    assert ids(sort_by="priority", sort_order="desc") == [b["id"], c["id"], a["id"]]
    assert ids(sort_by="priority", sort_order="asc") == [a["id"], c["id"], b["id"]]
    assert ids(sort_by="due_date", sort_order="asc") == [c["id"], a["id"], b["id"]]
    assert ids(sort_by="due_date", sort_order="desc") == [b["id"], a["id"], c["id"]]
    assert ids(limit=1, offset=1) == [b["id"]]
    titles = [
        t["title"]
        for t in alice.get(
            f"/api/projects/{pid}/tasks", params={"sort_by": "title", "sort_order": "asc"}
        ).json()
    ]
    assert sorted(titles) == sorted(["Bravo", "alpha", "Charlie"]) and len(titles) == 3


def test_delete_cascades_with_one_event_each(make_user: MakeUser, outbox: Outbox) -> None:
    alice = make_user()
    pid = alice.default_project
    root = alice.task(pid, title="root")["id"]
    kid = alice.post(f"/api/tasks/{root}/subtasks", {"title": "kid"}).json()["id"]
    grand = alice.post(f"/api/tasks/{kid}/subtasks", {"title": "grand"}).json()["id"]
    keep = alice.task(pid, title="keep")["id"]
    outbox.start()
    assert alice.delete(f"/api/tasks/{root}").json() == {"ok": True}
    assert [t["id"] for t in alice.get(f"/api/projects/{pid}/tasks").json()] == [keep]
    events = {e["entity_id"]: e for e in outbox.new()}
    assert set(events) == {root, kid, grand}
    assert events[root]["details"]["subtasks_deleted"] == 2
    assert events[grand]["details"]["deleted_with"] == root
    assert all(e["action"] == "deleted" for e in events.values())
    assert alice.get(f"/api/tasks/{kid}").status_code == 404


def test_events_carry_actor_and_client(make_user: MakeUser, outbox: Outbox) -> None:
    alice = make_user(client_id="cli-123", client_name="TaskFlow CLI")
    pid = alice.default_project
    tid = alice.task(pid, title="before")["id"]
    outbox.start()
    alice.put(f"/api/tasks/{tid}", {"title": "before"})  # no change: no event
    assert outbox.new() == []
    alice.put(f"/api/tasks/{tid}", {"title": "after", "tags": ["n"]})
    (event,) = outbox.new()
    assert event["action"] == "updated" and event["entity_type"] == "task"
    assert event["details"]["title"] == {"before": "before", "after": "after"}
    assert event["details"]["tags"] == {"before": [], "after": ["n"]}
    assert event["details"]["client_id"] == "cli-123"
    assert event["details"]["client_name"] == "TaskFlow CLI"
    assert event["actor_type"] == "human" and event["actor_id"] is not None
    assert event["project_id"] == pid and event["tenant_id"] == alice.tenant
