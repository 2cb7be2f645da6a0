"""Assigning worker 0 (issue 15, finding 6): a 400 as the reference answers, not a silent
unassign; unassigning is ``null``, and TaskCreate still reads 0 as nobody."""

from __future__ import annotations

from tests.integration.tasks_api.conftest import MakeUser, Outbox


def test_assigning_worker_zero_is_refused_as_not_a_member(
    make_user: MakeUser, outbox: Outbox
) -> None:
    alice = make_user()
    pid = alice.default_project
    me = alice.get(f"/api/projects/{pid}/members").json()[0]["worker_id"]
    task = alice.task(pid, assignee_id=me)
    outbox.start()

    resp = alice.patch(f"/api/tasks/{task['id']}/assign", {"assignee_id": 0})

    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "Worker 0 is not a member of this project"
    assert alice.get(f"/api/tasks/{task['id']}").json()["assignee_id"] == me
    assert outbox.new() == []


def test_unassigning_is_null_and_create_still_reads_zero_as_nobody(make_user: MakeUser) -> None:
    alice = make_user()
    pid = alice.default_project
    me = alice.get(f"/api/projects/{pid}/members").json()[0]["worker_id"]
    created = alice.task(pid, assignee_id=0)
    assert created["assignee_id"] is None  # TaskCreate: 0 means nobody (reference §1.6)

    assert alice.patch(f"/api/tasks/{created['id']}/assign", {"assignee_id": me}).status_code == 200
    resp = alice.patch(f"/api/tasks/{created['id']}/assign", {"assignee_id": None})
    assert resp.status_code == 200, resp.text
    assert resp.json()["assignee_id"] is None and resp.json()["assignee_handle"] is None

    spec = alice.get("/openapi.json").json()
    assign = spec["components"]["schemas"]["AssignUpdate"]["properties"]["assignee_id"]
    assert "null unassigns" in assign["description"]
    assert "0" in assign["description"] and "not a member" in assign["description"]
