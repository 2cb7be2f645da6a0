"""Request and response shapes of agents and the workers overview (reference §1.4-§1.5)."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import fields, validate
from taskflow_core.schemas import NotBlank, PageQuerySchema, StrictSchema, UTCDateTime

from ..projects.schemas import matching, name_field

HANDLE_MAX = 50
HANDLE_PATTERN = r"^@[a-z0-9_-]+$"
CAPABILITY_MAX = 100
CAPABILITIES_MAX = 50
AGENT_TYPES = ("claude", "qwen", "gemini", "custom")


def _capabilities(**kwargs: object) -> fields.List:
    return fields.List(
        fields.String(validate=[validate.Length(min=1, max=CAPABILITY_MAX), NotBlank()]),
        validate=validate.Length(max=CAPABILITIES_MAX),
        metadata={"description": "Up to 50 strings of 1..100 characters"},
        **kwargs,  # type: ignore[arg-type]
    )


class WorkerReadSchema(StrictSchema):
    id = fields.Integer()
    handle = fields.String()
    name = fields.String()
    type = fields.String()
    user_id = fields.String(allow_none=True, metadata={"description": "Always null for agents"})
    agent_type = fields.String(allow_none=True)
    capabilities = fields.List(fields.String())
    created_at = UTCDateTime()


class AgentCreateSchema(StrictSchema):
    openapi_example: ClassVar[dict[str, Any]] = {
        "handle": "@claude-coder",
        "name": "Claude Coder",
        "agent_type": "claude",
        "capabilities": ["python", "code-review"],
    }

    handle = fields.String(
        required=True, validate=[validate.Length(min=2, max=HANDLE_MAX), matching(HANDLE_PATTERN)]
    )
    name = name_field(required=True)
    agent_type = fields.String(required=True, validate=validate.OneOf(AGENT_TYPES))
    capabilities = _capabilities(load_default=list)


class AgentUpdateSchema(StrictSchema):
    openapi_example: ClassVar[dict[str, Any]] = {
        "name": "Claude Reviewer",
        "capabilities": ["code-review", "testing"],
    }

    name = name_field(required=False, allow_none=True)
    agent_type = fields.String(allow_none=True, validate=validate.OneOf(AGENT_TYPES))
    capabilities = _capabilities(allow_none=True)


class AgentListQuerySchema(PageQuerySchema):
    pass


class OrgProjectSchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    role = fields.String()


class OrgMemberSchema(StrictSchema):
    user_id = fields.String()
    email = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    image = fields.String(allow_none=True)
    org_role = fields.String(allow_none=True)
    projects = fields.List(fields.Nested(OrgProjectSchema))
    has_project_access = fields.Boolean()


class AgentSummarySchema(WorkerReadSchema):
    """An agent as the workers overview lists it."""

    class Meta:
        exclude = ("user_id", "created_at")


class WorkerListResponseSchema(StrictSchema):
    org_members = fields.List(fields.Nested(OrgMemberSchema))
    agents = fields.List(fields.Nested(AgentSummarySchema))
    total_members = fields.Integer()
    total_agents = fields.Integer()
    unassigned_count = fields.Integer(metadata={"description": "Org members with no project"})


WORKER_READ = WorkerReadSchema()
