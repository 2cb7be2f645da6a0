"""Request and response shapes of project members and member search (reference §1.3)."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import fields, validate
from taskflow_core.schemas import QuerySchema, StrictInteger, StrictSchema, UTCDateTime

USER_ID_MAX = 255
SEARCH_MAX = 200


class MemberReadSchema(StrictSchema):
    id = fields.Integer(metadata={"description": "Membership id (DELETE .../members/{id})"})
    worker_id = fields.Integer()
    handle = fields.String()
    name = fields.String()
    type = fields.String(validate=validate.OneOf(("human", "agent")))
    role = fields.String(validate=validate.OneOf(("owner", "member")))
    joined_at = UTCDateTime()


class MemberCreateSchema(StrictSchema):
    """Exactly one of ``user_id`` / ``agent_id`` (rules.member_target: neither or both is a 400).
    As in the old API, ``""`` and ``0`` count as absent."""

    # rules.member_target's rule, published as a ``oneOf`` in the OpenAPI component.
    openapi_extra: ClassVar[dict[str, Any]] = {
        "oneOf": [
            {
                "title": "A person",
                "required": ["user_id"],
                "properties": {
                    "user_id": {"type": "string", "minLength": 1},
                    "agent_id": {"enum": [None, 0]},
                },
            },
            {
                "title": "An agent",
                "required": ["agent_id"],
                "properties": {
                    "agent_id": {"type": "integer", "minimum": 1},
                    "user_id": {"type": ["string", "null"], "maxLength": 0},
                },
            },
        ]
    }
    openapi_example: ClassVar[dict[str, Any]] = {"user_id": "alice"}

    user_id = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=USER_ID_MAX),
        metadata={"description": "SSO user id of a human (exactly one of user_id / agent_id)"},
    )
    agent_id = StrictInteger(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=0, max=2**63 - 1),
        metadata={"description": "Id of an agent of this tenant"},
    )


class MemberSearchQuerySchema(QuerySchema):
    q = fields.String(
        load_default=None,
        validate=validate.Length(max=SEARCH_MAX),
        metadata={"description": "Case-insensitive substring of handle or name (% and _ literal)"},
    )
    project_id = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=2**63 - 1),
        metadata={"description": "Only members of this project (you must be a member)"},
    )
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=50))


class MemberSearchItemSchema(StrictSchema):
    id = fields.String(metadata={"description": "The handle"})
    name = fields.String()
    handle = fields.String()
    type = fields.String()
    description = fields.String(metadata={"description": '"AI Agent" or "Team Member"'})


class MemberSearchResultSchema(StrictSchema):
    members = fields.List(fields.Nested(MemberSearchItemSchema))
    total = fields.Integer(metadata={"description": "Number of all matches (not the page size)"})


MEMBER_READ = MemberReadSchema()
