"""Events leave when the change is made, not at the next poll (issue 18): a write answered by
the tasks service wakes its event consumers (webhooks, notification service) as it wakes the
audit relay, and so does the due-date scheduler's spawn. The consumers here poll every 60 s,
so only the wake-up can deliver within the test's seconds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.conftest import StartService
from tests.integration.tasks_api.conftest import MakeUser
from tests.support.issuer import TestIssuer
from tests.support.receiver import Receiver

SLOW_POLL = "60"


@pytest.fixture
def endpoint() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def tasks_url(
    start_service: StartService, db_url: str, issuer: TestIssuer, notifications: Receiver
) -> str:
    svc = start_service(
        "tasks",
        DATABASE_URL=db_url,
        SSO_URL=issuer.url,
        EVENTS_NOTIFY_URL=notifications.url,
        EVENTS_POLL_INTERVAL=SLOW_POLL,
        WEBHOOK_ALLOW_PRIVATE="true",
        SCHEDULER_INTERVAL="0.2",
    )
    return svc.url


def _types(receiver: Receiver, *, notify: bool) -> list[str]:
    if notify:
        return [got.json()["data"]["event_type"] for got in receiver.received]
    return [got.json()["type"] for got in receiver.received]


def test_a_write_reaches_webhooks_and_notifications_at_once(
    make_user: MakeUser, notifications: Receiver, endpoint: Receiver
) -> None:
    alice = make_user()
    pid = alice.new_project()
    made = alice.post(f"/api/projects/{pid}/webhooks", {"url": endpoint.url + "/hook"})
    assert made.status_code == 201, made.text
    for n in range(3):  # each write, not only the first after start-up
        started = time.monotonic()
        alice.task(pid, title=f"Now {n}")
        # Well under the 60 s poll (a test's transaction elsewhere on the server may hold the
        # event back for a few seconds: see the next test).
        endpoint.wait_for(lambda got, n=n: len(got) == n + 1, timeout=20)
        notifications.wait_for(lambda got, n=n: len(got) == n + 1, timeout=20)
        assert time.monotonic() - started < 20
    assert _types(endpoint, notify=False) == ["task.created"] * 3
    assert _types(notifications, notify=True) == ["task.created"] * 3


def test_an_event_held_back_by_a_long_transaction_leaves_soon_after_it_ends(
    make_user: MakeUser, endpoint: Receiver, db: psycopg.Connection[dict[str, Any]]
) -> None:
    """A consumer takes a row only once every older transaction on the server has ended. One
    that holds an id for 3 s while a write is made (another client's, another database's) keeps
    the event back that long, and no longer: after the wake-up the consumer keeps looking,
    less and less often, instead of waiting for its 60 s poll."""
    alice = make_user()
    pid = alice.new_project()
    made_hook = alice.post(f"/api/projects/{pid}/webhooks", {"url": endpoint.url + "/hook"})
    assert made_hook.status_code == 201
    with db.transaction():
        db.execute("SELECT pg_current_xact_id()")  # takes an id: later rows wait for it
        alice.task(pid, title="Held back")
        time.sleep(3)
        assert endpoint.received == []
        ended = time.monotonic()
    endpoint.wait_for(lambda got: len(got) == 1, timeout=15)
    assert time.monotonic() - ended < 15
    assert endpoint.received[0].json()["type"] == "task.created"


def test_a_spawn_by_the_due_date_scheduler_is_published(
    make_user: MakeUser, notifications: Receiver, endpoint: Receiver
) -> None:
    """No request made this change: the scheduler's round wakes the consumers itself."""
    alice = make_user()
    pid = alice.new_project()
    alice.post(f"/api/projects/{pid}/webhooks", {"url": endpoint.url + "/hook"})
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    root = alice.task(
        pid, title="Standup", recurrence_pattern="daily", recurrence_trigger="on_due_date",
        due_date=soon,
    )  # fmt: skip
    deadline = time.monotonic() + 15
    while not alice.get(f"/api/tasks/{root['id']}").json()["has_spawned_next"]:
        assert time.monotonic() < deadline, "the scheduler did not spawn the next occurrence"
        time.sleep(0.2)
    notifications.wait_for(
        lambda got: any(g.json()["data"]["event_type"] == "task.spawned" for g in got), 10
    )
    spawned = [
        got.json()["data"]["data"]
        for got in notifications.received
        if got.json()["data"]["event_type"] == "task.spawned"
    ]
    assert len(spawned) == 1
    assert spawned[0]["spawned_from"] == root["id"] == spawned[0]["recurring_root"]
    assert spawned[0]["task_title"] == "Standup" and spawned[0]["project_id"] == pid
    endpoint.wait_for(lambda got: any(g.json()["type"] == "task.spawned" for g in got), 10)
    hooked = [g.json() for g in endpoint.received if g.json()["type"] == "task.spawned"]
    assert hooked[0]["data"]["spawned_from"] == root["id"]
