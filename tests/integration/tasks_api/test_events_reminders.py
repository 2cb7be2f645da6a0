"""reminder.due (issue 18) to the stand-in notification service: planned for a task with a
due date and a human assignee, re-planned when the due date changes, sent once per due date,
dropped on completion. Time passes by moving the stored reminder's time (the timing rules
themselves are unit tested)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from taskflow_core.migrations import migration_files

from tests.conftest import StartService
from tests.integration.tasks_api.conftest import MakeUser
from tests.support.issuer import TestIssuer
from tests.support.receiver import Receiver


@pytest.fixture
def tasks_url(
    start_service: StartService, db_url: str, issuer: TestIssuer, notifications: Receiver
) -> str:
    return start_service(
        "tasks",
        DATABASE_URL=db_url,
        SSO_URL=issuer.url,
        EVENTS_NOTIFY_URL=notifications.url,
        EVENTS_POLL_INTERVAL="0.1",
    ).url


def _reminders(receiver: Receiver) -> list[dict[str, Any]]:
    return [r.json()["data"]["data"] for r in receiver.received if r.path.endswith("/reminders")]


def _planned(db: psycopg.Connection[dict[str, Any]], tid: int) -> dict[str, Any] | None:
    deadline = time.monotonic() + 10
    while True:
        row = db.execute("SELECT * FROM tasks.task_reminders WHERE task_id = %s", (tid,)).fetchone()
        if row is not None or time.monotonic() > deadline:
            return row
        time.sleep(0.1)


def _time_passes(db: psycopg.Connection[dict[str, Any]], tid: int) -> None:
    db.execute("UPDATE tasks.task_reminders SET fire_at = now() WHERE task_id = %s", (tid,))


def test_reminder_due_planned_sent_once_and_replanned(
    make_user: MakeUser, notifications: Receiver, db: psycopg.Connection[dict[str, Any]]
) -> None:
    alice, bob = make_user(), make_user()
    pid = alice.new_project()
    bob_worker = alice.add_member(pid, bob)
    due = (datetime.now(UTC) + timedelta(hours=5)).replace(microsecond=0)
    tid = alice.task(pid, title="File taxes", assignee_id=bob_worker, due_date=due.isoformat())[
        "id"
    ]
    planned = _planned(db, tid)
    assert planned is not None and planned["hours_until_due"] == 1
    assert planned["fire_at"] == due - timedelta(hours=1)
    _time_passes(db, tid)
    notifications.wait_for(lambda got: len(_reminders(notifications)) >= 1)
    first = notifications.received[-1]
    assert first.path == "/dapr/events/reminders"
    assert first.json()["data"]["event_type"] == "reminder.due"
    assert _reminders(notifications) == [
        {
            "task_id": tid,
            "user_id": bob.sub,
            "title": "File taxes",
            "project_id": pid,
            "due_at": due.isoformat(),
            "hours_until_due": 1,
        }
    ]
    # Once per due date: another change does not send it again.
    alice.put(f"/api/tasks/{tid}", {"title": "File the taxes"})
    _time_passes(db, tid)
    time.sleep(1.5)
    assert len(_reminders(notifications)) == 1
    # A new due date: a new reminder, planned from now (3 days away: 24 h before).
    later = due + timedelta(days=3)
    alice.put(f"/api/tasks/{tid}", {"due_date": later.isoformat()})
    deadline = time.monotonic() + 10
    while (_planned(db, tid) or {}).get("due_date") != later and time.monotonic() < deadline:
        time.sleep(0.1)
    replanned = _planned(db, tid)
    assert replanned is not None and replanned["hours_until_due"] == 24
    _time_passes(db, tid)
    notifications.wait_for(lambda got: len(_reminders(notifications)) >= 2)
    assert _reminders(notifications)[1]["due_at"] == later.isoformat()


def test_no_reminder_after_completion_or_without_a_human_assignee(
    make_user: MakeUser, notifications: Receiver, db: psycopg.Connection[dict[str, Any]]
) -> None:
    alice, bob = make_user(), make_user()
    pid = alice.new_project()
    bob_worker = alice.add_member(pid, bob)
    due = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    done = alice.task(pid, title="Done early", assignee_id=bob_worker, due_date=due)["id"]
    nobody = alice.task(pid, title="Unassigned", due_date=due)["id"]
    assert _planned(db, done) is not None
    assert bob.patch(f"/api/tasks/{done}/status", {"status": "completed"}).status_code == 200
    deadline = time.monotonic() + 10
    while _planned(db, done) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert db.execute("SELECT count(*) AS n FROM tasks.task_reminders").fetchone() == {"n": 0}
    assert nobody and _reminders(notifications) == []


def test_tasks_from_before_reminders_existed_get_theirs_planned(
    make_user: MakeUser, db: psycopg.Connection[dict[str, Any]]
) -> None:
    """Migration 0019 plans, by the same rules, what 0018's consumer never saw change."""
    alice, bob = make_user(), make_user()
    pid = alice.new_project()
    bob_worker = alice.add_member(pid, bob)
    now = datetime.now(UTC).replace(microsecond=0)
    left = {"days": timedelta(days=3), "hours": timedelta(hours=5),
            "minutes": timedelta(minutes=20), "moments": timedelta(minutes=3),
            "too late": timedelta(seconds=30)}  # fmt: skip
    due = {name: (now + d).isoformat() for name, d in left.items()}
    ids = {n: alice.task(pid, title=n, assignee_id=bob_worker, due_date=due[n])["id"] for n in due}
    later = due["days"]
    done = alice.task(pid, title="done", assignee_id=bob_worker, due_date=later)
    alice.patch(f"/api/tasks/{done['id']}/status", {"status": "completed"})
    unassigned = alice.task(pid, title="nobody's", due_date=later)
    assert _planned(db, ids["days"]) is not None
    time.sleep(1)  # the consumer has seen every change
    db.execute("DELETE FROM tasks.task_reminders")  # as it was before 0018
    (sql,) = [
        sql for version, sql in migration_files("taskflow_tasks") if version.startswith("0019")
    ]
    with db.transaction():  # one transaction: behind PgBouncer a SET alone may not stay
        db.execute("SET LOCAL search_path TO tasks, public")
        db.execute(sql)
    rows = {r["task_id"]: r for r in db.execute("SELECT * FROM tasks.task_reminders").fetchall()}
    hours = [rows[ids[n]]["hours_until_due"] for n in ["days", "hours", "minutes", "moments"]]
    assert hours == [24, 1, 0, -1]
    assert rows[ids["days"]]["fire_at"] == now + left["days"] - timedelta(hours=24)
    assert rows[ids["minutes"]]["fire_at"] == now + left["minutes"] - timedelta(minutes=5)
    assert set(rows) == {ids["days"], ids["hours"], ids["minutes"], ids["moments"]}
    assert done["id"] not in rows and unassigned["id"] not in rows
