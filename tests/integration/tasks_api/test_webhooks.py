"""Project webhooks (issue 18) against real HTTP receivers started by the tests: signatures
verified with the `standardwebhooks` package, bodies parsed with the CloudEvents SDK, both
independent of our code."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cloudevents.v1.http import from_http
from standardwebhooks import Webhook

from tests.conftest import StartService
from tests.integration.tasks_api.conftest import MakeUser, Outbox, User
from tests.support.issuer import TestIssuer
from tests.support.receiver import Received, Receiver

FAST = {
    "WEBHOOK_ALLOW_PRIVATE": "true",
    "EVENTS_POLL_INTERVAL": "0.1",
    "WEBHOOK_BACKOFF_BASE": "0.2",
    "WEBHOOK_BACKOFF_MAX": "0.5",
}


@pytest.fixture
def tasks_url(start_service: StartService, db_url: str, issuer: TestIssuer) -> str:
    return start_service("tasks", DATABASE_URL=db_url, SSO_URL=issuer.url, **FAST).url


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _hook(user: User, pid: int, url: str, **fields: Any) -> dict[str, Any]:
    resp = user.post(f"/api/projects/{pid}/webhooks", {"url": url, **fields})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def _verify(secret: str, got: Received) -> dict[str, Any]:
    """The signature checked by standardwebhooks, the body parsed by the CloudEvents SDK."""
    Webhook(secret).verify(got.body, got.headers)
    event = from_http(got.headers, got.body)
    return {
        "id": event["id"],
        "type": event["type"],
        "subject": event.get("subject"),
        "source": event["source"],
        "data": event.data,
        "webhook_id": got.headers["webhook-id"],
    }


def _metrics(base_url: str) -> dict[str, float]:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    found = {}
    for line in text.splitlines():
        if line.startswith("taskflow_") and " " in line:
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def test_crud_owner_only_and_validation(make_user: MakeUser) -> None:
    alice, bob = make_user(), make_user()
    pid = alice.new_project()
    alice.add_member(pid, bob)
    made = _hook(alice, pid, "http://127.0.0.1:9/hook", description="CI")
    assert made["secret"].startswith("whsec_") and made["active"] is True
    assert set(made["events"]) >= {"task.created", "task.completed", "reminder.due"}
    base = f"/api/projects/{pid}/webhooks"
    listed = alice.get(base).json()
    assert [h["id"] for h in listed] == [made["id"]] and "secret" not in listed[0]
    item = f"{base}/{made['id']}"
    changed = alice.patch(item, {"events": ["task.deleted"], "active": False}).json()
    assert changed["events"] == ["task.deleted"] and changed["active"] is False
    assert alice.get(item).json()["events"] == ["task.deleted"]
    # Members who do not own the project may not see or change its webhooks.
    assert bob.get(base).status_code == 403
    assert bob.post(base, {"url": "http://127.0.0.1:9/x"}).status_code == 403
    bad = alice.post(base, {"url": "http://127.0.0.1:9/x", "events": ["task.exploded"]})
    assert bad.status_code == 422
    assert alice.post(base, {"url": "ftp://example.com/x"}).status_code == 422
    assert alice.delete(item).status_code == 200
    assert alice.get(item).status_code == 404


def test_receiver_stopped_for_a_minute_gets_everything_once_back(
    make_user: MakeUser, tasks_url: str
) -> None:
    """Nothing listens on the endpoint's port for a minute (connections refused, retried with
    backoff); a receiver started on that port then gets every event once, in order per task,
    each with the webhook-id its delivery had from the start."""
    with Receiver() as gone:
        port, url = gone.port, gone.url
    alice = make_user()
    pid = alice.new_project()
    hook = _hook(alice, pid, url + "/hook", events=["task.created", "task.updated"])
    tids = [alice.task(pid, title=f"T{i}")["id"] for i in range(2)]
    for tid in tids:
        assert alice.put(f"/api/tasks/{tid}", {"title": f"{tid} v1"}).status_code == 200
    time.sleep(60)
    listing = f"/api/projects/{pid}/webhooks/{hook['id']}/deliveries"
    waiting = alice.get(listing).json()
    assert len(waiting) == 4 and all(d["state"] == "pending" for d in waiting)
    assert max(d["attempts"] for d in waiting) >= 10  # tried again and again meanwhile
    with Receiver(port=port) as back:
        back.wait_for(lambda got: len(got) >= 4, timeout=30)
        time.sleep(1)
        events = [_verify(hook["secret"], got) for got in back.received]
    assert len(events) == 4 == len({e["webhook_id"] for e in events})
    assert {e["webhook_id"] for e in events} == {d["message_id"] for d in waiting}
    for tid in tids:
        assert [e["type"] for e in events if e["subject"] == f"tasks/{tid}"] == [
            "task.created", "task.updated"
        ]  # fmt: skip


def test_delivery_is_a_signed_cloudevent(make_user: MakeUser, receiver: Receiver) -> None:
    alice, bob = make_user(), make_user()
    pid = alice.new_project()
    bob_worker = alice.add_member(pid, bob)
    hook = _hook(alice, pid, receiver.url + "/hooks/taskflow")
    task = alice.task(pid, title="Ship it", assignee_id=bob_worker)
    receiver.wait_for(lambda got: len(got) >= 1)
    got = receiver.received[0]
    assert got.path == "/hooks/taskflow"
    assert got.headers["content-type"] == "application/cloudevents+json"
    event = _verify(hook["secret"], got)
    assert event["type"] == "task.created" and event["subject"] == f"tasks/{task['id']}"
    assert event["source"] == f"/projects/{pid}"
    assert event["data"]["task_id"] == task["id"] and event["data"]["user_id"] == bob.sub
    assert event["data"]["task"]["title"] == "Ship it"
    # A tampered body fails verification (the check is real).
    with pytest.raises(Exception):  # noqa: B017
        Webhook(hook["secret"]).verify(got.body.replace(b"Ship", b"Skip"), got.headers)


def test_receiver_down_then_back_gets_everything_in_order(
    make_user: MakeUser, receiver: Receiver, tasks_url: str
) -> None:
    alice = make_user()
    pid = alice.new_project()
    hook = _hook(alice, pid, receiver.url, events=["task.created", "task.updated"])
    receiver.status = 503  # down: every attempt fails
    tids = [alice.task(pid, title=f"T{i}")["id"] for i in range(3)]
    for step in range(1, 4):
        for tid in tids:
            renamed = alice.put(f"/api/tasks/{tid}", {"title": f"{tid} v{step}"})
            assert renamed.status_code == 200, renamed.text
    # While it is down only the oldest event of each task is tried (order per task), again
    # and again.
    receiver.wait_for(lambda got: len(got) >= 9)
    failed_ids = {r.headers["webhook-id"] for r in receiver.received}
    assert len(failed_ids) == 3
    receiver.status = 200
    mark = len(receiver.received)
    receiver.wait_for(
        lambda got: len({r.headers["webhook-id"] for r in got[mark:]}) >= 12, timeout=30
    )
    time.sleep(0.5)
    after = [_verify(hook["secret"], r) for r in receiver.received[mark:]]
    # Each retry carried the webhook-id of the first attempt; each event arrived once.
    assert failed_ids <= {e["webhook_id"] for e in after}
    assert len(after) == len({e["webhook_id"] for e in after}) == 12
    for tid in tids:
        mine = [e for e in after if e["subject"] == f"tasks/{tid}"]
        titles = [e["data"]["changes"]["title"]["after"] for e in mine[1:]]
        assert mine[0]["type"] == "task.created"
        assert titles == [f"{tid} v1", f"{tid} v2", f"{tid} v3"]  # in order, each once
    deliveries = alice.get(f"/api/projects/{pid}/webhooks/{hook['id']}/deliveries").json()
    assert len(deliveries) == 12 and all(d["state"] == "delivered" for d in deliveries)
    assert all(d["last_status_code"] == 200 for d in deliveries)
    assert sorted(d["attempts"] >= 2 for d in deliveries) == [False] * 9 + [True] * 3
    assert deliveries[0]["id"] > deliveries[-1]["id"]  # newest first
    # /metrics: deliveries by outcome, their latency, and what each consumer has pending.
    metrics = _metrics(tasks_url)
    assert metrics['taskflow_webhook_deliveries_total{outcome="delivered",service="tasks"}'] == 12
    assert metrics['taskflow_webhook_deliveries_total{outcome="failed",service="tasks"}'] >= 9
    assert metrics['taskflow_webhook_delivery_latency_seconds_count{service="tasks"}'] == 12
    assert 'taskflow_events_pending{consumer="webhooks",service="tasks"}' in metrics


def test_redeliver_sends_the_event_again_with_a_new_webhook_id(
    make_user: MakeUser, receiver: Receiver
) -> None:
    alice = make_user()
    pid = alice.new_project()
    hook = _hook(alice, pid, receiver.url)
    alice.task(pid, title="Once more")
    receiver.wait_for(lambda got: len(got) >= 1)
    base = f"/api/projects/{pid}/webhooks/{hook['id']}/deliveries"
    deadline = time.monotonic() + 10
    while (first := alice.get(base).json()[0])["state"] != "delivered":
        assert time.monotonic() < deadline, first
        time.sleep(0.1)
    assert first["event_type"] == "task.created" and first["next_attempt_at"] is None
    again = alice.post(f"{base}/{first['id']}/redeliver")
    assert again.status_code == 202, again.text
    receiver.wait_for(lambda got: len(got) >= 2)
    one, two = (_verify(hook["secret"], r) for r in receiver.received[:2])
    assert one["id"] == two["id"] and one["webhook_id"] != two["webhook_id"]
    assert alice.post(f"{base}/999999/redeliver").status_code == 404


def test_gone_disables_the_endpoint_with_an_audit_entry(
    make_user: MakeUser, receiver: Receiver, outbox: Outbox
) -> None:
    alice = make_user()
    pid = alice.new_project()
    hook = _hook(alice, pid, receiver.url)
    receiver.status = 410
    outbox.start()
    alice.task(pid, title="Nobody listens")
    item = f"/api/projects/{pid}/webhooks/{hook['id']}"
    deadline = time.monotonic() + 20
    while alice.get(item).json()["active"] and time.monotonic() < deadline:
        time.sleep(0.1)
    read = alice.get(item).json()
    assert read["active"] is False and "410" in read["disabled_reason"]
    alice.task(pid, title="After")
    time.sleep(1.0)
    assert len(receiver.received) == 1  # nothing more is sent to a disabled endpoint
    audit = [e for e in outbox.new() if e["entity_type"] == "webhook"]
    assert [(e["entity_id"], e["action"]) for e in audit] == [(hook["id"], "disabled")]


def test_a_redirect_is_not_followed_but_retried(make_user: MakeUser, receiver: Receiver) -> None:
    """A 3xx is a failed attempt (no redirects followed: the SSRF guard checked this URL, not
    wherever it points), retried at the same URL."""
    with Receiver() as elsewhere:
        receiver.status = 307
        receiver.extra_headers = {"location": elsewhere.url + "/stolen"}
        alice = make_user()
        pid = alice.new_project()
        hook = _hook(alice, pid, receiver.url + "/hook", events=["task.created"])
        alice.task(pid, title="Stay here")
        receiver.wait_for(lambda got: len(got) >= 2)  # tried, and tried again
        time.sleep(0.5)
        assert elsewhere.received == []
    listing = alice.get(f"/api/projects/{pid}/webhooks/{hook['id']}/deliveries").json()
    assert listing[0]["state"] == "pending" and listing[0]["last_status_code"] == 307
    assert listing[0]["attempts"] >= 2


def test_hanging_endpoint_does_not_hold_up_the_others(make_user: MakeUser) -> None:
    alice = make_user()
    pid = alice.new_project()
    with Receiver() as slow, Receiver() as fine:
        slow.hang = 8.0
        _hook(alice, pid, slow.url)
        fine_hook = _hook(alice, pid, fine.url)
        tids = [alice.task(pid, title=f"T{i}")["id"] for i in range(20)]
        fine.wait_for(lambda got: len(got) >= 20, timeout=6)
        subjects = {_verify(fine_hook["secret"], r)["subject"] for r in fine.received}
        assert subjects == {f"tasks/{tid}" for tid in tids}
