"""Dates at both ends of the calendar (issue 15, finding 2): a due date whose UTC instant is
outside 0001-01-01 .. 9999-12-31 is a 422 naming the field, one inside is kept exactly, and a
recurring series whose next occurrence would fall after 9999 ends instead of failing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings

from tests.integration.tasks_api.conftest import MakeUser, Outbox, User
from tests.unit.test_datetime_fields import EDGES, any_datetime


def _series(user: User, pid: int) -> list[dict[str, Any]]:
    tasks = user.get(f"/api/projects/{pid}/tasks", params={"sort_order": "asc"}).json()
    return [t for t in tasks if t["parent_task_id"] is None]


OUT_OF_RANGE = [
    "0001-01-01T00:00:00+01:00",  # 31 Dec of year 0 in UTC
    "9999-12-31T23:00:00-05:00",  # 1 Jan 10000 in UTC
    "0001-01-01T00:59:59.999999+01:00",
    "9999-12-31T23:59:59.999999-00:01",
]


@pytest.mark.parametrize("due_date", OUT_OF_RANGE)
def test_due_date_past_the_calendar_is_a_422_naming_the_field(
    make_user: MakeUser, due_date: str
) -> None:
    alice = make_user()
    pid = alice.default_project
    task = alice.task(pid)

    created = alice.post(f"/api/projects/{pid}/tasks", {"title": "Edge", "due_date": due_date})
    subtask = alice.post(f"/api/tasks/{task['id']}/subtasks", {"title": "E", "due_date": due_date})
    updated = alice.put(f"/api/tasks/{task['id']}", {"due_date": due_date})

    for resp in (created, subtask, updated):
        assert resp.status_code == 422, resp.text
        body = resp.json()
        assert body["status_code"] == 422
        assert body["detail"][0]["loc"] == ["body", "due_date"]
        assert "0001-01-01" in body["detail"][0]["msg"] and "9999-12-31" in body["detail"][0]["msg"]
    assert len(alice.get(f"/api/projects/{pid}/tasks").json()) == 1


@pytest.mark.parametrize(
    ("due_date", "stored"),
    [
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00+00:00"),
        ("0001-01-01T01:00:00+01:00", "0001-01-01T00:00:00+00:00"),
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999+00:00"),
        ("9999-12-31T18:00:00-05:00", "9999-12-31T23:00:00+00:00"),
        ("9999-12-31T23:59:59", "9999-12-31T23:59:59+00:00"),
    ],
)
def test_due_dates_at_the_edges_that_exist_in_utc_are_kept(
    make_user: MakeUser, due_date: str, stored: str
) -> None:
    alice = make_user()
    task = alice.task(alice.default_project, due_date=due_date)
    assert task["due_date"] == stored
    assert alice.get(f"/api/tasks/{task['id']}").json()["due_date"] == stored


@pytest.mark.parametrize(
    ("pattern", "due_date"),
    [
        ("weekly", "9999-12-30T00:00:00Z"),
        ("monthly", "9999-12-15T00:00:00Z"),
        ("daily", "9999-12-31T00:00:00Z"),
        ("1m", "9999-12-31T23:59:30Z"),
    ],
)
def test_completing_a_recurring_task_at_the_end_of_the_calendar_ends_its_series(
    make_user: MakeUser, outbox: Outbox, pattern: str, due_date: str
) -> None:
    alice = make_user()
    pid = alice.default_project
    task = alice.task(pid, recurrence_pattern=pattern, due_date=due_date)
    outbox.start()

    resp = alice.patch(f"/api/tasks/{task['id']}/status", {"status": "completed"})

    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "completed" and resp.json()["spawn_count"] == 0
    assert [t["id"] for t in _series(alice, pid)] == [task["id"]]
    assert [e["action"] for e in outbox.new()] == ["status_changed"]


@pytest.fixture
def alice(make_user: MakeUser) -> User:
    return make_user()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(moment=any_datetime)
@example(moment=EDGES[0])
@example(moment=EDGES[1])
def test_any_due_date_is_stored_as_its_utc_instant_or_refused_with_a_422(
    alice: User, moment: datetime
) -> None:
    text = moment.isoformat()
    project = alice.default_project
    resp = alice.post(f"/api/projects/{project}/tasks", {"title": "D", "due_date": text})
    try:
        instant = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except OverflowError:
        assert resp.status_code == 422, (text, resp.text)
        assert resp.json()["detail"][0]["loc"] == ["body", "due_date"]
        return
    assert resp.status_code == 201, (text, resp.text)
    assert datetime.fromisoformat(resp.json()["due_date"]) == instant
