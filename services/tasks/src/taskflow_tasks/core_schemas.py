"""Request and response shapes of projects, members, agents and workers (reference §1.2-§1.5).

Bodies refuse unknown fields and loose types (422 with per-field messages); limits are checked
here, before the database. Responses dump through the read schemas (timestamps with offset).
"""

from __future__ import annotations

from marshmallow import fields, validate
from taskflow_core.schemas import (
    NotBlank,
    PageQuerySchema,
    QuerySchema,
    StrictInteger,
    StrictSchema,
    UTCDateTime,
)

NAME_MAX = 200
SLUG_MAX = 100
PROJECT_DESCRIPTION_MAX = 2000
HANDLE_MAX = 50
USER_ID_MAX = 255
CAPABILITY_MAX = 100
CAPABILITIES_MAX = 50
SEARCH_MAX = 200
AGENT_TYPES = ("claude", "qwen", "gemini", "custom")


def _name(*, required: bool, allow_none: bool = False) -> fields.String:
    return fields.String(
        required=required,
        allow_none=allow_none,
        validate=[validate.Length(min=1, max=NAME_MAX), NotBlank()],
        metadata={"description": "1..200 characters, not blank"},
    )


def _capabilities(**kwargs: object) -> fields.List:
    return fields.List(
        fields.String(validate=[validate.Length(min=1, max=CAPABILITY_MAX), NotBlank()]),
        validate=validate.Length(max=CAPABILITIES_MAX),
        metadata={"description": "Up to 50 strings of 1..100 characters"},
        **kwargs,  # type: ignore[arg-type]
    )


# Projects ---------------------------------------------------------------------------------
class ProjectReadSchema(StrictSchema):
    id = fields.Integer()
    slug = fields.String()
    name = fields.String()
    description = fields.String(allow_none=True)
    owner_id = fields.String(metadata={"description": "SSO user id of the owner"})
    is_default = fields.Boolean()
    tenant_id = fields.String()
    member_count = fields.Integer()
    task_count = fields.Integer(metadata={"description": "All tasks, subtasks included"})
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


class ProjectCreateSchema(StrictSchema):
    slug = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=SLUG_MAX),
            validate.Regexp(r"^[a-z0-9-]+$", error="Must match ^[a-z0-9-]+$."),
        ],
        metadata={"description": "^[a-z0-9-]+$, at most 100 characters, unique in the tenant"},
    )
    name = _name(required=True)
    description = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=PROJECT_DESCRIPTION_MAX)
    )


class ProjectUpdateSchema(StrictSchema):
    name = _name(required=False, allow_none=True)
    description = fields.String(
        allow_none=True,
        validate=validate.Length(max=PROJECT_DESCRIPTION_MAX),
        metadata={"description": "Explicit null clears it; absent leaves it unchanged"},
    )


class ProjectDeleteQuerySchema(QuerySchema):
    force = fields.Boolean(
        load_default=False, metadata={"description": "Also delete the project's tasks"}
    )


class ProjectDeletedSchema(StrictSchema):
    ok = fields.Boolean()
    deleted_tasks = fields.Integer()


# Members ----------------------------------------------------------------------------------
class MemberReadSchema(StrictSchema):
    id = fields.Integer(metadata={"description": "Membership id (DELETE .../members/{id})"})
    worker_id = fields.Integer()
    handle = fields.String()
    name = fields.String()
    type = fields.String(validate=validate.OneOf(("human", "agent")))
    role = fields.String(validate=validate.OneOf(("owner", "member")))
    joined_at = UTCDateTime()


class MemberCreateSchema(StrictSchema):
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


# Agents and workers -----------------------------------------------------------------------
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
    handle = fields.String(
        required=True,
        validate=[
            validate.Length(min=2, max=HANDLE_MAX),
            validate.Regexp(r"^@[a-z0-9_-]+$", error="Must match ^@[a-z0-9_-]+$."),
        ],
    )
    name = _name(required=True)
    agent_type = fields.String(required=True, validate=validate.OneOf(AGENT_TYPES))
    capabilities = _capabilities(load_default=list)


class AgentUpdateSchema(StrictSchema):
    name = _name(required=False, allow_none=True)
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


class AgentSummarySchema(StrictSchema):
    id = fields.Integer()
    handle = fields.String()
    name = fields.String()
    type = fields.String()
    agent_type = fields.String(allow_none=True)
    capabilities = fields.List(fields.String())


class WorkerListResponseSchema(StrictSchema):
    org_members = fields.List(fields.Nested(OrgMemberSchema))
    agents = fields.List(fields.Nested(AgentSummarySchema))
    total_members = fields.Integer()
    total_agents = fields.Integer()
    unassigned_count = fields.Integer(metadata={"description": "Org members with no project"})


PROJECT_READ = ProjectReadSchema()
MEMBER_READ = MemberReadSchema()
WORKER_READ = WorkerReadSchema()
