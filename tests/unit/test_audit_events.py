"""Validation of incoming audit events, one by one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from taskflow_audit.events import AuditEvent, RejectedEvent, parse_event


def raw(**changes: object) -> dict:
    event = {
        "event_id": str(uuid.uuid4()),
        "tenant_id": "org-a",
        "project_id": 4,
        "entity_type": "task",
        "entity_id": 9,
        "action": "status_changed",
        "actor_id": 2,
        "actor_handle": "@bob",
        "actor_type": "human",
        "details": {"before": "pending", "after": "in_progress"},
        "created_at": "2026-03-04T05:06:07.123456+00:00",
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not ...}


def test_valid_event_is_normalised() -> None:
    parsed = parse_event(0, raw(created_at="2026-03-04T07:06:07.123456+02:00"))
    assert isinstance(parsed, AuditEvent)
    assert parsed.created_at == datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    assert parsed.project_id == 4


def test_every_actor_type_is_accepted() -> None:
    for actor_type in ("human", "agent", "system"):
        assert isinstance(parse_event(0, raw(actor_type=actor_type)), AuditEvent)
    bad = parse_event(3, raw(actor_type="robot"))
    assert isinstance(bad, RejectedEvent) and bad.index == 3 and "actor_type" in bad.reason


def test_naive_time_is_utc_and_system_actor_may_have_no_worker() -> None:
    parsed = parse_event(
        0, raw(created_at="2026-03-04T05:06:07", actor_id=None, actor_type="system")
    )
    assert isinstance(parsed, AuditEvent)
    assert parsed.created_at.tzinfo is not None and parsed.actor_id is None


def test_project_event_belongs_to_its_project() -> None:
    parsed = parse_event(0, raw(entity_type="project", entity_id=12, project_id=None))
    assert isinstance(parsed, AuditEvent) and parsed.project_id == 12
    wrong = parse_event(0, raw(entity_type="project", entity_id=12, project_id=13))
    assert isinstance(wrong, RejectedEvent)


def test_malformed_events_are_rejected_with_a_reason() -> None:
    cases = {
        "event_id": raw(event_id="not-a-uuid"),
        "entity_id": raw(entity_id="9"),
        "unknown": raw(colour="red"),
        "tenant_id": raw(tenant_id=...),
        "created_at": raw(created_at="yesterday"),
        "project_id": raw(project_id=None),  # a task event needs its project
        "details": raw(details={"x": "a\x00b"}),
        "action": raw(action="Drop Table"),
        "entity_id_bool": raw(entity_id=True),
    }
    for name, event in cases.items():
        parsed = parse_event(0, event)
        assert isinstance(parsed, RejectedEvent), name
        assert parsed.reason, name
    assert parse_event(0, raw(event_id="nope")).event_id == "nope"  # type: ignore[union-attr]
    not_object = parse_event(1, ["x"])
    assert isinstance(not_object, RejectedEvent) and not_object.event_id is None
