"""The audit service checks events of the common shape without marshmallow (the relay's drain
rate depends on it): for every event, accepted or not, it must answer exactly as the schema."""

from __future__ import annotations

import uuid

import pytest
from taskflow_audit import events
from taskflow_audit.events import AuditEvent, parse_event, parse_with_schema

from tests.unit.test_audit_events import raw

BIG = 2**63

CASES = [
    raw(),
    raw(created_at="2026-03-04T05:06:07Z"),
    raw(created_at="2026-03-04T05:06:07+00:00"),
    raw(created_at="2026-03-04T05:06:07.123456"),  # naive: UTC
    raw(created_at="2026-03-04T07:06:07.123+02:00"),
    raw(created_at="0000-01-01T00:00:00+00:00"),
    raw(created_at="2026-02-30T00:00:00+00:00"),
    raw(created_at=1234),
    raw(project_id=None),
    raw(project_id=...),
    raw(entity_type="project", entity_id=7, project_id=None),
    raw(entity_type="project", entity_id=7, project_id=8),
    raw(entity_type="worker", project_id=None),
    raw(entity_type="task", project_id=None),
    raw(project_id=BIG),
    raw(project_id=BIG - 1),
    raw(project_id=-1),
    raw(project_id=True),
    raw(project_id=4.0),
    raw(project_id="4"),
    raw(entity_id=BIG),
    raw(entity_id=False),
    raw(actor_id=None),
    raw(actor_id=...),
    raw(actor_id=-5),
    raw(actor_handle=None),
    raw(actor_handle=...),
    raw(actor_handle="x" * 100),
    raw(actor_handle="x" * 101),
    raw(actor_handle="a\x00b"),
    raw(actor_handle=""),
    raw(actor_type="robot"),
    raw(actor_type=...),
    raw(tenant_id=""),
    raw(tenant_id="t" * 100),
    raw(tenant_id="t" * 101),
    raw(tenant_id="a\x00"),
    raw(tenant_id=5),
    raw(entity_type="Task"),
    raw(entity_type="t" * 51),
    raw(action="x" * 64),
    raw(action="x" * 65),
    raw(action="9lives"),
    raw(event_id=str(uuid.uuid4()).upper()),
    raw(event_id=uuid.uuid4().hex),
    raw(event_id="not-a-uuid"),
    raw(event_id=...),
    raw(details=...),
    raw(details={}),
    raw(details=[]),
    raw(details={"a": {"b": ["c\x00"]}}),
    raw(details={"k\x00": 1}),
    raw(details={"n": float("nan")}),
    raw(details={"big": "x" * 70_000}),
    raw(details={"nested": {"list": [1, 2.5, None, True, "é"]}}),
    {**raw(), "extra": 1},
    [],
    "event",
    None,
]


@pytest.mark.parametrize("case", CASES, ids=range(len(CASES)))
def test_same_answer_as_the_schema(case: object) -> None:
    assert parse_event(3, case) == parse_with_schema(3, case)


def test_the_common_shape_skips_the_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("the schema was used")

    monkeypatch.setattr(events, "parse_with_schema", refuse)
    for case in (
        raw(),
        raw(created_at="2026-03-04T05:06:07Z"),
        raw(entity_type="worker", project_id=None),
    ):
        assert isinstance(parse_event(0, case), AuditEvent)
