"""Each fix over the reference API (issue 4, §4), with its own test."""

from __future__ import annotations

from tests.integration.tasks_api.conftest import MakeUser, Outbox


def test_member_changes_only_own_or_unassigned_tasks(make_user: MakeUser) -> None:
    owner, bob, carol = make_user(), make_user(), make_user()
    pid = owner.new_project()
    bob_id = owner.add_member(pid, bob)
    carol_id = owner.add_member(pid, carol)
    carols = owner.task(pid, assignee_id=carol_id)["id"]
    free = owner.task(pid)["id"]
    bobs = owner.task(pid, assignee_id=bob_id)["id"]

    denied = [
        bob.patch(f"/api/tasks/{carols}/status", {"status": "in_progress"}),
        bob.put(f"/api/tasks/{carols}", {"title": "mine now"}),
        bob.patch(f"/api/tasks/{carols}/assign", {"assignee_id": bob_id}),
        bob.delete(f"/api/tasks/{carols}"),
    ]
    for resp in denied:
        assert resp.status_code == 403, resp.text
        assert resp.json()["error"] == (
            "You can only modify tasks assigned to you or unassigned tasks"
        )
    assert owner.get(f"/api/tasks/{carols}").json()["title"] == "A task"
    # Reading is open to every member.
    assert bob.get(f"/api/tasks/{carols}").status_code == 200
    assert bob.patch(f"/api/tasks/{free}/status", {"status": "in_progress"}).status_code == 200
    assert bob.patch(f"/api/tasks/{bobs}/status", {"status": "in_progress"}).status_code == 200
    # The owner changes anything.
    assert owner.patch(f"/api/tasks/{carols}/status", {"status": "blocked"}).status_code == 200


def test_assignee_may_not_approve_own_review_unless_owner(make_user: MakeUser) -> None:
    owner, bob = make_user(), make_user()
    pid = owner.new_project()
    bob_id = owner.add_member(pid, bob)
    tid = owner.task(pid, assignee_id=bob_id)["id"]
    bob.patch(f"/api/tasks/{tid}/status", {"status": "in_progress"})
    bob.patch(f"/api/tasks/{tid}/status", {"status": "review"})
    own = bob.post(f"/api/tasks/{tid}/approve")
    assert own.status_code == 403
    assert "own task" in own.json()["error"]
    assert bob.post(f"/api/tasks/{tid}/reject", {"reason": "x"}).status_code == 403
    assert owner.post(f"/api/tasks/{tid}/approve").json()["status"] == "completed"
    # An owner reviewing a task assigned to themselves is allowed.
    mine = owner.task(pid, assignee_id=None)["id"]
    owner.patch(f"/api/tasks/{mine}/status", {"status": "in_progress"})
    owner.patch(f"/api/tasks/{mine}/status", {"status": "review"})
    assert owner.post(f"/api/tasks/{mine}/approve").status_code == 200


def test_trigger_and_clone_flag_are_stored(make_user: MakeUser) -> None:
    alice = make_user()
    pid = alice.default_project
    task = alice.task(
        pid,
        recurrence_pattern="daily",
        recurrence_trigger="both",
        clone_subtasks_on_recur=True,
    )
    assert task["is_recurring"] is True
    assert task["recurrence_trigger"] == "both" and task["clone_subtasks_on_recur"] is True
    updated = alice.put(
        f"/api/tasks/{task['id']}",
        {"recurrence_trigger": "on_due_date", "clone_subtasks_on_recur": False},
    ).json()
    assert updated["recurrence_trigger"] == "on_due_date"
    assert updated["clone_subtasks_on_recur"] is False
    assert alice.get(f"/api/tasks/{task['id']}").json()["recurrence_trigger"] == "on_due_date"


def test_reparent_through_put(make_user: MakeUser, outbox: Outbox) -> None:
    alice = make_user()
    pid = alice.default_project
    a = alice.task(pid, title="A")["id"]
    b = alice.task(pid, title="B", parent_task_id=a)["id"]
    c = alice.task(pid, title="C", parent_task_id=b)["id"]
    d = alice.task(pid, title="D")["id"]
    outbox.start()
    for parent in (a, b, c):  # itself, its child, its grandchild
        cycle = alice.put(f"/api/tasks/{a}", {"parent_task_id": parent})
        assert cycle.status_code == 400
        assert cycle.json()["error"] == "Circular reference detected"
    assert outbox.new() == []
    moved = alice.put(f"/api/tasks/{c}", {"parent_task_id": d})
    assert moved.status_code == 200 and moved.json()["parent_task_id"] == d
    assert [s["id"] for s in alice.get(f"/api/tasks/{d}").json()["subtasks"]] == [c]
    events = outbox.new()
    assert [(e["action"], e["details"]) for e in events] == [
        ("updated", {"parent_task_id": {"before": b, "after": d}})
    ]
    top = alice.put(f"/api/tasks/{c}", {"parent_task_id": None}).json()
    assert top["parent_task_id"] is None
    other = alice.new_project()
    elsewhere = alice.task(other)["id"]
    cross = alice.put(f"/api/tasks/{c}", {"parent_task_id": elsewhere})
    assert cross.status_code == 400
    assert cross.json()["error"] == "Parent task must be in the same project"
    missing = alice.put(f"/api/tasks/{c}", {"parent_task_id": 999999})
    assert missing.json()["error"] == "Parent task 999999 not found"


def test_parent_shows_subtask_rollup(make_user: MakeUser) -> None:
    alice = make_user()
    pid = alice.default_project
    parent = alice.task(pid, title="parent")["id"]
    assert alice.get(f"/api/tasks/{parent}").json()["subtask_progress"] is None
    kids = [
        alice.post(f"/api/tasks/{parent}/subtasks", {"title": f"k{i}"}).json() for i in range(3)
    ]
    for kid, pct in zip(kids, (0, 50, 100), strict=True):
        alice.patch(f"/api/tasks/{kid['id']}/status", {"status": "in_progress"})
        alice.patch(f"/api/tasks/{kid['id']}/progress", {"percent": pct})
    got = alice.get(f"/api/tasks/{parent}").json()
    assert got["subtask_progress"] == 50 and got["subtask_count"] == 3
    assert got["progress_percent"] == 0  # its own progress is untouched
    assert [s["id"] for s in got["subtasks"]] == [k["id"] for k in kids]
    listed = {t["id"]: t for t in alice.get(f"/api/projects/{pid}/tasks").json()}
    assert listed[parent]["subtask_progress"] == 50 and listed[parent]["subtask_count"] == 3


def test_unassign_and_clear_fields(make_user: MakeUser, outbox: Outbox) -> None:
    alice = make_user()
    pid = alice.default_project
    alice.get("/api/projects")
    me = alice.get(f"/api/projects/{pid}/members").json()[0]["worker_id"]
    task = alice.task(pid, description="text", due_date="2030-01-01T10:00:00Z", assignee_id=me)
    assert task["assignee_handle"] is not None
    outbox.start()
    unassigned = alice.patch(f"/api/tasks/{task['id']}/assign", {"assignee_id": None}).json()
    assert unassigned["assignee_id"] is None and unassigned["assignee_handle"] is None
    assert outbox.new()[0]["details"] == {"before": me, "after": None, "assignee_handle": None}
    # Absent fields are unchanged.
    same = alice.put(f"/api/tasks/{task['id']}", {"title": "renamed"}).json()
    assert same["description"] == "text" and same["due_date"] == "2030-01-01T10:00:00+00:00"
    cleared = alice.put(f"/api/tasks/{task['id']}", {"description": None, "due_date": None}).json()
    assert cleared["description"] is None and cleared["due_date"] is None
    details = outbox.new()[-1]["details"]
    assert details["due_date"] == {"before": "2030-01-01T10:00:00+00:00", "after": None}
    assert details["description"] == {"before": "text", "after": None}


def test_search_escapes_wildcards_and_orders_are_stable(make_user: MakeUser) -> None:
    alice = make_user()
    pid = alice.default_project
    for title in ("100% done", "1000 done", "a_b", "axb"):
        alice.task(pid, title=title)
    found = alice.get(f"/api/projects/{pid}/tasks", params={"search": "100%"}).json()
    assert [t["title"] for t in found] == ["100% done"]
    found = alice.get(f"/api/projects/{pid}/tasks", params={"search": "a_b"}).json()
    assert [t["title"] for t in found] == ["a_b"]
    # Same priority everywhere: the id tiebreaker keeps pages disjoint and complete.
    for _ in range(6):
        alice.task(pid, title="same")
    seen = []
    for offset in range(0, 10, 3):
        page = alice.get(
            f"/api/projects/{pid}/tasks",
            params={"sort_by": "priority", "limit": 3, "offset": offset},
        ).json()
        seen += [t["id"] for t in page]
    assert len(seen) == len(set(seen)) == 10


def test_delete_recurring_root_keeps_series(make_user: MakeUser, outbox: Outbox) -> None:
    alice = make_user()
    pid = alice.default_project
    root = alice.task(pid, recurrence_pattern="daily")["id"]
    alice.patch(f"/api/tasks/{root}/status", {"status": "completed"})
    second = alice.get(f"/api/projects/{pid}/tasks").json()[0]["id"]
    alice.patch(f"/api/tasks/{second}/status", {"status": "completed"})
    third = alice.get(f"/api/projects/{pid}/tasks").json()[0]["id"]
    assert len({root, second, third}) == 3
    outbox.start()
    deleted = alice.delete(f"/api/tasks/{root}")
    assert deleted.status_code == 200 and deleted.json() == {"ok": True}
    assert alice.get(f"/api/tasks/{second}").json()["recurring_root_id"] is None
    assert alice.get(f"/api/tasks/{third}").json()["recurring_root_id"] == second
    assert alice.get(f"/api/tasks/{third}").json()["spawn_count"] == 1
    events = outbox.new()
    assert sorted((e["entity_id"], e["action"]) for e in events) == [
        (root, "deleted"),
        (second, "updated"),
        (third, "updated"),
    ]
