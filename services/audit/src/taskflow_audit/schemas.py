"""Request and response schemas of the audit service (bodies refuse unknown fields; query
strings ignore them, as everywhere). Rules across parameters (cursor vs offset, since before
until, a cursor we did not issue) are checked by the resources: 400, not a schema error."""

from __future__ import annotations

from marshmallow import Schema, fields, validate
from taskflow_core.schemas import PageQuerySchema, QuerySchema, StrictSchema, UTCDateTime

from .events import ACTOR_TYPES, MAX_BATCH


class AuditReadSchema(Schema):
    """One entry, with the reference's AuditRead fields (plus project_id and event_id)."""

    id = fields.Integer(dump_only=True)
    entity_type = fields.String(dump_only=True, metadata={"example": "task"})
    entity_id = fields.Integer(dump_only=True)
    action = fields.String(dump_only=True, metadata={"example": "status_changed"})
    actor_id = fields.Integer(dump_only=True, allow_none=True)
    actor_handle = fields.String(dump_only=True, allow_none=True)
    actor_type = fields.String(dump_only=True, validate=validate.OneOf(ACTOR_TYPES))
    details = fields.Dict(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)
    project_id = fields.Integer(dump_only=True, allow_none=True)
    event_id = fields.UUID(dump_only=True)


class AuditPageQuerySchema(PageQuerySchema):
    """The shared ``limit`` 1..100 (50) and ``offset`` ≥ 0, plus ``order`` desc (newest first)
    or asc, and a ``cursor`` from the previous page's ``X-Next-Cursor`` (not with offset)."""

    order = fields.String(load_default="desc", validate=validate.OneOf(("desc", "asc")))
    cursor = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "opaque; from X-Next-Cursor (a foreign value is a 400)"},
    )


class SearchQuerySchema(AuditPageQuerySchema):
    """Filters of ``GET /api/audit``; without ``project_id`` it covers every project the
    caller may read (and the tenant's project-less entries, such as agents)."""

    project_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**63 - 1))
    actor_id = fields.Integer(load_default=None, validate=validate.Range(min=0, max=2**63 - 1))
    entity_type = fields.String(load_default=None, validate=validate.Length(min=1, max=50))
    action = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    since = UTCDateTime(load_default=None)
    until = UTCDateTime(load_default=None)


class VerifyQuerySchema(QuerySchema):
    project_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**63 - 1))


class BrokenLinkSchema(Schema):
    position = fields.Integer()
    entry_id = fields.Integer(allow_none=True)
    reason = fields.String(metadata={"description": "missing | link | hash | head"})
    message = fields.String()


class VerifyReportSchema(Schema):
    project_id = fields.Integer()
    ok = fields.Boolean()
    checked = fields.Integer()
    last_id = fields.Integer()
    last_hash = fields.String()
    first_broken = fields.Nested(BrokenLinkSchema, allow_none=True)


class IngestBatchSchema(StrictSchema):
    """``{"events": [...]}``; each event is validated on its own (see ``events.py``)."""

    events = fields.List(
        fields.Raw(), required=True, validate=validate.Length(min=1, max=MAX_BATCH)
    )


class IngestResultSchema(Schema):
    index = fields.Integer()
    event_id = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "stored | duplicate | rejected"})
    id = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)


class IngestReplySchema(Schema):
    results = fields.List(fields.Nested(IngestResultSchema))
    stored = fields.Integer()
    duplicates = fields.Integer()
    rejected = fields.Integer()
