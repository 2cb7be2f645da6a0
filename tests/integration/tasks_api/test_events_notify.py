"""Events to the notification service (issue 18): a stand-in notification service (a real HTTP
server) records what the tasks service posts to its Dapr subscription routes; each reference
event type (reference-api.md §5.4) arrives with its fields, the quirks fixed. The same events
go through a Dapr sidecar's publish API when DAPR_HTTP_ENDPOINT is set instead."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import StartService
from tests.integration.tasks_api.conftest import MakeUser
from tests.support.issuer import TestIssuer
from tests.support.receiver import Received, Receiver

TASK_KEYS = {
    "id", "title", "description", "status", "priority", "progress_percent", "tags", "due_date",
    "project_id", "assignee_id", "parent_task_id", "is_recurring", "recurrence_pattern",
}  # fmt: skip


@pytest.fixture
def tasks_url(
    start_service: StartService, db_url: str, issuer: TestIssuer, notifications: Receiver
) -> str:
    svc = start_service(
        "tasks",
        DATABASE_URL=db_url,
        SSO_URL=issuer.url,
        SCHEDULER_INTERVAL="0.2",
        EVENTS_NOTIFY_URL=notifications.url,
        EVENTS_POLL_INTERVAL="0.1",
    )
    return svc.url


def _events(receiver: Receiver) -> list[dict[str, Any]]:
    return [r.json() for r in receiver.received]


def _title(got: Received) -> str:
    return str(got.json()["data"]["data"]["task"]["title"])


def _of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e["data"]["data"] for e in events if e["data"]["event_type"] == kind]


def test_each_reference_event_arrives_with_its_fields(
    make_user: MakeUser, notifications: Receiver
) -> None:
    alice, bob = make_user(), make_user()
    pid = alice.new_project()
    bob_worker = alice.add_member(pid, bob)
    task = alice.task(pid, title="Write the report", assignee_id=bob_worker, tags=["q3"])
    tid = task["id"]
    assert alice.put(f"/api/tasks/{tid}", {"title": "Write the Q3 report"}).status_code == 200
    assert alice.patch(f"/api/tasks/{tid}/assign", {"assignee_id": bob_worker}).status_code == 200
    # Bob finishes Alice's task: Alice (its creator) is the one to notify.
    assert bob.patch(f"/api/tasks/{tid}/status", {"status": "completed"}).status_code == 200
    # Approve completes a task too (the reference published nothing there).
    other = alice.task(pid, title="Review me", assignee_id=bob_worker)["id"]
    for status in ("in_progress", "review"):
        assert bob.patch(f"/api/tasks/{other}/status", {"status": status}).status_code == 200
    assert alice.post(f"/api/tasks/{other}/approve").status_code == 200
    series = alice.task(pid, title="Standup", recurrence_pattern="daily")["id"]
    assert alice.patch(f"/api/tasks/{series}/status", {"status": "completed"}).status_code == 200
    assert alice.delete(f"/api/tasks/{other}").status_code in (200, 204)

    notifications.wait_for(lambda got: any(b"task.deleted" in r.body for r in got))
    events = _events(notifications)
    paths = {r.path for r in notifications.received}
    assert paths == {"/dapr/events/task-events"}
    for event in events:  # the CloudEvent a Dapr sidecar would deliver
        assert event["specversion"] == "1.0" and event["topic"] == "task-events"
        assert set(event["data"]) == {"event_type", "data", "timestamp"}

    created = _of(events, "task.created")
    first = next(c for c in created if c["task_id"] == tid)
    assert first["user_id"] == bob.sub and first["actor_id"] == alice.sub
    assert first["actor_name"] and set(first["task"]) == TASK_KEYS

    assigned = _of(events, "task.assigned")
    assert [a["task_id"] for a in assigned] == [tid]
    assert assigned[0]["user_id"] == bob.sub and assigned[0]["project_id"] == pid
    assert set(assigned[0]) == {"task_id", "task_title", "user_id", "actor_id", "actor_name",
                                "project_id"}  # fmt: skip

    updated = [u for u in _of(events, "task.updated") if "title" in u["changes"]]
    assert updated[0]["changes"]["title"] == {
        "before": "Write the report", "after": "Write the Q3 report"
    }  # fmt: skip

    completed = {c["task_id"]: c for c in _of(events, "task.completed")}
    assert set(completed) == {tid, other, series}
    assert completed[tid]["user_id"] == alice.sub == completed[tid]["creator_id"]
    assert completed[tid]["actor_id"] == bob.sub and set(completed[tid]["task"]) == TASK_KEYS
    assert completed[other]["actor_id"] == alice.sub  # approved by Alice, her own task
    assert completed[other]["creator_id"] is None
    assert completed[series]["is_recurring"] is True

    spawned = _of(events, "task.spawned")
    assert len(spawned) == 1 and spawned[0]["spawned_from"] == series
    assert spawned[0]["recurring_root"] == series and spawned[0]["project_id"] == pid
    assert spawned[0]["task_title"] == "Standup"

    deleted = _of(events, "task.deleted")
    assert deleted == [
        {"task_id": other, "title": "Review me", "actor_id": alice.sub,
         "actor_name": deleted[0]["actor_name"]}
    ]  # fmt: skip
    # Every event once, in the order the changes were made.
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids))
    kinds = [e["data"]["event_type"] for e in events]
    assert kinds.index("task.assigned") < kinds.index("task.completed")


def test_dapr_sidecar_publish_api(
    start_service: StartService, db_url: str, issuer: TestIssuer
) -> None:
    with Receiver() as sidecar:
        svc = start_service(
            "tasks",
            DATABASE_URL=db_url,
            SSO_URL=issuer.url,
            DAPR_HTTP_ENDPOINT=sidecar.url,
            DAPR_PUBSUB_NAME="kafka-pubsub",
            EVENTS_POLL_INTERVAL="0.1",
        )
        token = issuer.token("dapr-user", tenant_id="tenant-a")
        with httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {token}"}) as http:
            pid = http.get("/api/projects").json()[0]["id"]
            made = http.post(f"/api/projects/{pid}/tasks", json={"title": "Via Dapr"})
            assert made.status_code == 201
        sidecar.wait_for(lambda got: len(got) >= 1)
        first = sidecar.received[0]
        assert first.path == "/v1.0/publish/kafka-pubsub/task-events"
        envelope = first.json()
        assert envelope["event_type"] == "task.created"
        assert envelope["data"]["task"]["title"] == "Via Dapr"
        assert envelope["data"]["user_id"] is None and envelope["data"]["actor_id"] == "dapr-user"


def test_the_notification_service_answer_follows_dapr_subscriber_contract(
    make_user: MakeUser, notifications: Receiver
) -> None:
    """The service was written for Dapr: a 404 or ``{"status": "DROP"}`` drops that event (the
    next ones still come), ``{"status": "RETRY"}`` or a 5xx has it sent again, in order."""
    answers = {
        "Not for us": (404, b"not found"),
        "Poison": (200, b'{"status": "DROP"}'),
        "Busy": (200, b'{"status": "RETRY"}'),
        "Down": (503, b""),
    }
    seen: dict[str, int] = {}

    def answer(got: Received) -> tuple[int, bytes]:
        title = got.json()["data"]["data"]["task"]["title"]
        seen[title] = seen.get(title, 0) + 1
        if seen[title] == 1 or title in {"Not for us", "Poison"}:
            return answers.get(title, (200, b""))
        return 200, b'{"status": "SUCCESS"}'

    notifications.answer = answer
    alice = make_user()
    pid = alice.new_project()
    for title in ["Not for us", "Poison", "Busy", "Down", "Fine"]:
        alice.task(pid, title=title)
    notifications.wait_for(lambda got: any(_title(g) == "Fine" for g in got))
    assert [_title(g) for g in notifications.received] == [
        "Not for us", "Poison", "Busy", "Busy", "Down", "Down", "Fine"
    ]  # fmt: skip
