"""Incoming audit events: validation of each event on its own, and the normalised form stored.

A batch is never refused as a whole for one bad event: :func:`parse_event` returns either an
:class:`AuditEvent` or the reason it was rejected, and the ingest stores the good ones.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields, validate
from taskflow_core.schemas import StrictInteger, StrictSchema, UTCDateTime

ACTOR_TYPES = ("human", "agent", "system")
_NAME = r"^[a-z][a-z0-9_]*$"
MAX_DETAILS_BYTES = 65_536
MAX_BATCH = 1000
# PostgreSQL bigint: ids outside it could never be stored.
_BIGINT = validate.Range(min=0, max=2**63 - 1)


def _no_nul(value: Any) -> None:
    """PostgreSQL text and jsonb cannot hold U+0000; refuse it here rather than fail the batch."""

    def walk(node: Any) -> None:
        if isinstance(node, str) and "\x00" in node:
            raise ValidationError("must not contain the NUL character")
        if isinstance(node, dict):
            for key, item in node.items():
                walk(key)
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(value)


def _json_size(value: dict[str, Any]) -> None:
    try:
        size = len(json.dumps(value, allow_nan=False).encode())
    except ValueError as exc:
        raise ValidationError("must be JSON without NaN or Infinity") from exc
    if size > MAX_DETAILS_BYTES:
        raise ValidationError(f"must be at most {MAX_DETAILS_BYTES} bytes of JSON")


class AuditEventSchema(StrictSchema):
    """One event as the tasks service's outbox writes it (``taskflow_tasks.outbox``)."""

    event_id = fields.UUID(required=True)
    tenant_id = fields.String(required=True, validate=[validate.Length(min=1, max=100), _no_nul])
    project_id = StrictInteger(load_default=None, allow_none=True, validate=_BIGINT)
    entity_type = fields.String(
        required=True, validate=[validate.Length(min=1, max=50), validate.Regexp(_NAME)]
    )
    entity_id = StrictInteger(required=True, validate=_BIGINT)
    action = fields.String(
        required=True, validate=[validate.Length(min=1, max=64), validate.Regexp(_NAME)]
    )
    actor_id = StrictInteger(load_default=None, allow_none=True, validate=_BIGINT)
    actor_handle = fields.String(
        load_default=None, allow_none=True, validate=[validate.Length(max=100), _no_nul]
    )
    actor_type = fields.String(required=True, validate=validate.OneOf(ACTOR_TYPES))
    details = fields.Dict(keys=fields.String(), load_default=dict, validate=[_no_nul, _json_size])
    # The reference stored naive UTC; a timestamp without an offset is read as UTC, and one
    # whose UTC instant is outside years 1..9999 is refused (UTCDateTime).
    created_at = UTCDateTime(required=True)


@dataclass(frozen=True)
class AuditEvent:
    """A valid event, normalised: UTC time, project events carry their own project id."""

    event_id: uuid.UUID
    tenant_id: str
    project_id: int | None
    entity_type: str
    entity_id: int
    action: str
    actor_id: int | None
    actor_handle: str | None
    actor_type: str
    details: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class RejectedEvent:
    """An event refused, with the ``event_id`` it claimed (as given) and why."""

    index: int
    event_id: str | None
    reason: str


_SCHEMA = AuditEventSchema()


def _reason(messages: Any) -> str:
    if isinstance(messages, dict):
        parts = []
        for field_name, problems in messages.items():
            text = "; ".join(str(p) for p in problems) if isinstance(problems, list) else problems
            parts.append(f"{field_name}: {text}")
        return ", ".join(parts)
    return str(messages)


def parse_event(index: int, raw: Any) -> AuditEvent | RejectedEvent:
    """Validate one raw event of a batch (``index`` is its place in the batch)."""
    quick = _parse_common(raw)
    if quick is not None:
        return _normalised(index, quick, raw.get("event_id"))
    return parse_with_schema(index, raw)


def parse_with_schema(index: int, raw: Any) -> AuditEvent | RejectedEvent:
    """:func:`parse_event` through the marshmallow schema only (the reference answer)."""
    claimed = raw.get("event_id") if isinstance(raw, dict) else None
    claimed_id = str(claimed) if claimed is not None else None
    if not isinstance(raw, dict):
        return RejectedEvent(index, None, "event must be a JSON object")
    try:
        data = _SCHEMA.load(raw)
    except ValidationError as exc:
        return RejectedEvent(index, claimed_id, _reason(exc.messages))
    return _normalised(index, data, claimed_id)


def _normalised(index: int, data: dict[str, Any], claimed_id: Any) -> AuditEvent | RejectedEvent:
    project_id = data["project_id"]
    if data["entity_type"] == "project" and project_id is None:
        # A project's own entries belong to its history: GET /api/projects/{pid}/audit.
        project_id = data["entity_id"]
    if data["entity_type"] == "project" and project_id != data["entity_id"]:
        return RejectedEvent(index, claimed_id, "project_id: must equal entity_id for a project")
    if data["entity_type"] == "task" and project_id is None:
        return RejectedEvent(index, claimed_id, "project_id: required for a task event")
    # The schema's fields are the event's: normalised, its project and its time in UTC.
    created_at = data["created_at"].astimezone(UTC)
    details = dict(data["details"])
    return AuditEvent(
        **{**data, "project_id": project_id, "details": details, "created_at": created_at}
    )


# -- the common case, checked without marshmallow ------------------------------------------------
# The relay sends events exactly as the tasks service writes them; validating those through the
# schema cost 135 µs each, most of the audit pipeline's time (bench/relay_drain.py). An event of
# that common shape is checked here by the same rules; anything else (a missing or unknown
# field, another spelling of a UUID or a time, a wrong type) goes through the schema, which
# decides and words the reason. tests/unit/test_audit_events_fast.py holds the two to one answer.
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_NAME_RE = re.compile(_NAME)
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?(\+00:00|Z)$")
_FIELDS = frozenset(AuditEventSchema().fields)
_REQUIRED = frozenset(n for n, f in AuditEventSchema().fields.items() if f.required)
_MAX_ID = 2**63 - 1


def _int_or_none(value: Any) -> bool:
    return value is None or (type(value) is int and 0 <= value <= _MAX_ID)


def _text(value: Any, low: int, high: int) -> bool:
    return type(value) is str and low <= len(value) <= high and "\x00" not in value


def _parse_common(raw: Any) -> dict[str, Any] | None:
    """The schema's result for an event of the common shape; None: let the schema decide."""
    if type(raw) is not dict or not _REQUIRED <= raw.keys() <= _FIELDS:
        return None
    event_id, created_at = raw["event_id"], raw["created_at"]
    entity_type, action = raw["entity_type"], raw["action"]
    details = raw.get("details", {})
    handle = raw.get("actor_handle")
    if not (
        type(event_id) is str
        and _UUID.match(event_id)
        and _text(raw["tenant_id"], 1, 100)
        and _int_or_none(raw.get("project_id"))
        and _text(entity_type, 1, 50)
        and _NAME_RE.match(entity_type)
        and type(raw["entity_id"]) is int
        and _int_or_none(raw["entity_id"])
        and _text(action, 1, 64)
        and _NAME_RE.match(action)
        and _int_or_none(raw.get("actor_id"))
        and (handle is None or _text(handle, 0, 100))
        and raw["actor_type"] in ACTOR_TYPES
        and type(details) is dict
        and all(type(key) is str for key in details)
        and type(created_at) is str
        and _TIME.match(created_at)
    ):
        return None
    try:
        _no_nul(details)
        _json_size(details)
        at = datetime.fromisoformat(created_at)
    except (ValidationError, ValueError):
        return None
    return {
        "event_id": uuid.UUID(event_id),
        "tenant_id": raw["tenant_id"],
        "project_id": raw.get("project_id"),
        "entity_type": entity_type,
        "entity_id": raw["entity_id"],
        "action": action,
        "actor_id": raw.get("actor_id"),
        "actor_handle": handle,
        "actor_type": raw["actor_type"],
        "details": details,
        "created_at": at,
    }
