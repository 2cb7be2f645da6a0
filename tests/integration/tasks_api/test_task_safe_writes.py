"""ETag / If-Match and Idempotency-Key on the task endpoints."""

from __future__ import annotations

from tests.integration.tasks_api.conftest import MakeUser, Outbox


def test_stale_if_match_is_412_and_changes_nothing(make_user: MakeUser, outbox: Outbox) -> None:
    alice = make_user()
    tid = alice.task(alice.default_project)["id"]
    first = alice.get(f"/api/tasks/{tid}")
    tag = first.headers["ETag"]
    changed = alice.put(f"/api/tasks/{tid}", {"title": "v2"}, headers={"If-Match": tag})
    assert changed.status_code == 200
    new_tag = changed.headers["ETag"]
    assert new_tag != tag
    assert alice.get(f"/api/tasks/{tid}").headers["ETag"] == new_tag
    outbox.start()
    stale = [
        alice.put(f"/api/tasks/{tid}", {"title": "v3"}, headers={"If-Match": tag}),
        alice.patch(f"/api/tasks/{tid}/status", {"status": "blocked"}, headers={"If-Match": tag}),
        alice.patch(f"/api/tasks/{tid}/assign", {"assignee_id": None}, headers={"If-Match": tag}),
        alice.delete(f"/api/tasks/{tid}", headers={"If-Match": tag}),
    ]
    for resp in stale:
        assert resp.status_code == 412, resp.text
        assert resp.json()["error"].startswith("Precondition failed")
    assert outbox.new() == []
    assert alice.get(f"/api/tasks/{tid}").json()["title"] == "v2"
    # Without If-Match: last write wins, as old clients expect.
    assert alice.patch(f"/api/tasks/{tid}/status", {"status": "blocked"}).status_code == 200
    ok = alice.delete(
        f"/api/tasks/{tid}", headers={"If-Match": alice.get(f"/api/tasks/{tid}").headers["ETag"]}
    )
    assert ok.status_code == 200


def test_idempotency_key_replays_and_writes_once(make_user: MakeUser, outbox: Outbox) -> None:
    alice = make_user()
    pid = alice.default_project
    outbox.start()
    headers = {"Idempotency-Key": "create-1"}
    first = alice.post(f"/api/projects/{pid}/tasks", {"title": "once"}, headers=headers)
    again = alice.post(f"/api/projects/{pid}/tasks", {"title": "once"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(alice.get(f"/api/projects/{pid}/tasks").json()) == 1
    assert len(outbox.new()) == 1
    different = alice.post(f"/api/projects/{pid}/tasks", {"title": "other"}, headers=headers)
    assert different.status_code == 422
    assert len(alice.get(f"/api/projects/{pid}/tasks").json()) == 1
    # A failed request does not burn its key.
    tid = first.json()["id"]
    key = {"Idempotency-Key": "approve-1"}
    assert alice.post(f"/api/tasks/{tid}/approve", headers=key).status_code == 400
    alice.patch(f"/api/tasks/{tid}/status", {"status": "in_progress"})
    alice.patch(f"/api/tasks/{tid}/status", {"status": "review"})
    outbox.start()
    approved = alice.post(f"/api/tasks/{tid}/approve", headers=key)
    replay = alice.post(f"/api/tasks/{tid}/approve", headers=key)
    assert approved.status_code == replay.status_code == 200
    assert replay.json() == approved.json()
    assert [e["action"] for e in outbox.new()] == ["approved"]
    sub_key = {"Idempotency-Key": "sub-1"}
    s1 = alice.post(f"/api/tasks/{tid}/subtasks", {"title": "kid"}, headers=sub_key)
    s2 = alice.post(f"/api/tasks/{tid}/subtasks", {"title": "kid"}, headers=sub_key)
    assert s1.json()["id"] == s2.json()["id"]
    assert alice.get(f"/api/tasks/{tid}").json()["subtask_count"] == 1
