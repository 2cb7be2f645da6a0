"""The audit service's datetime inputs at the calendar's edges (issue 15, finding 2): the
``since``/``until`` filters of ``GET /api/audit`` and an ingested event's ``created_at``. An
instant outside years 1..9999 in UTC is a 422 naming the parameter (or that one event rejected,
naming the field), never a 500."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from taskflow_core.auth.service_tokens import ServiceCredentials
from taskflow_core.config import Settings

from tests.unit.test_datetime_fields import EDGES, any_datetime

from .conftest import AuditStack, MakeUser, User

OUT_OF_RANGE = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00"]


@pytest.mark.parametrize("edge", OUT_OF_RANGE)
@pytest.mark.parametrize("name", ["since", "until"])
def test_search_dates_past_the_calendar_are_a_422_naming_the_parameter(
    stack: AuditStack, make_user: MakeUser, name: str, edge: str
) -> None:
    stack.start_audit()
    alice = make_user()

    resp = alice.audit.get("/api/audit", params={name: edge})

    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["status_code"] == 422 and body["detail"][0]["loc"] == ["query", name]
    assert "9999-12-31" in body["error"]


@pytest.fixture
def alice(stack: AuditStack, make_user: MakeUser) -> User:
    stack.start_audit()
    stack.start_tasks()  # a valid search asks it which projects the caller may read
    return make_user()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(since=any_datetime, until=any_datetime)
@example(since=EDGES[0], until=EDGES[8])
@example(since=EDGES[7], until=EDGES[1])
def test_any_search_dates_answer_a_page_or_a_4xx(
    alice: User, since: datetime, until: datetime
) -> None:
    resp = alice.audit.get(
        "/api/audit", params={"since": since.isoformat(), "until": until.isoformat()}
    )

    def in_utc(moment: datetime) -> datetime | None:
        try:
            return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
        except OverflowError:
            return None

    since_utc, until_utc = in_utc(since), in_utc(until)
    if since_utc is None or until_utc is None:
        assert resp.status_code == 422, resp.text
    elif until_utc <= since_utc:
        assert resp.status_code == 400, resp.text  # "until must be after since"
    else:
        assert resp.status_code == 200, resp.text


def test_an_event_dated_past_the_calendar_is_rejected_alone(
    stack: AuditStack, db: psycopg.Connection[dict[str, Any]]
) -> None:
    stack.start_audit()
    token = ServiceCredentials(Settings(service_secret=stack.secret), "tasks").token_for("audit")
    good, bad = "00000000-0000-4000-8000-0000000000a1", "00000000-0000-4000-8000-0000000000a2"
    event = {
        "tenant_id": "tenant-a",
        "project_id": 5,
        "entity_type": "task",
        "entity_id": 50,
        "action": "created",
        "actor_id": 1,
        "actor_handle": "@a",
        "actor_type": "human",
        "details": {},
    }
    batch = {
        "events": [
            {**event, "event_id": good, "created_at": "0001-01-01T01:00:00+01:00"},
            {**event, "event_id": bad, "created_at": OUT_OF_RANGE[0]},
        ]
    }

    resp = httpx.post(
        f"{stack.audit_url}/internal/audit/events",
        json=batch,
        headers={"Authorization": f"Bearer {token}"},
    )

    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert [r["status"] for r in results] == ["stored", "rejected"]
    assert results[1]["reason"].startswith("created_at:")
    rows = db.execute("SELECT event_id::text AS e FROM audit.entries ORDER BY id").fetchall()
    assert [r["e"] for r in rows] == [good]
