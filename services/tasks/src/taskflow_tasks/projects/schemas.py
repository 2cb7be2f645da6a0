"""Request and response shapes of projects (reference §1.2).

Bodies refuse unknown fields and loose types (422 with per-field messages); limits are checked
here, before the database. Responses dump through the read schemas (timestamps with offset).
"""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import fields, validate
from taskflow_core.schemas import NotBlank, QuerySchema, StrictSchema, UTCDateTime

NAME_MAX = 200
SLUG_MAX = 100
SLUG_PATTERN = r"^[a-z0-9-]+$"
PROJECT_DESCRIPTION_MAX = 2000


def matching(pattern: str) -> validate.Regexp:
    """A value matching ``pattern``, else "Must match <pattern>."."""
    return validate.Regexp(pattern, error=f"Must match {pattern}.")


def name_field(*, required: bool, allow_none: bool = False) -> fields.String:
    return fields.String(
        required=required,
        allow_none=allow_none,
        validate=[validate.Length(min=1, max=NAME_MAX), NotBlank()],
        metadata={"description": "1..200 characters, not blank"},
    )


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
    # The request-body example of the OpenAPI document (Swagger UI's "Try it out").
    openapi_example: ClassVar[dict[str, Any]] = {
        "slug": "website-redesign",
        "name": "Website redesign",
        "description": "New landing page and documentation site",
    }

    slug = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=SLUG_MAX), matching(SLUG_PATTERN)],
        metadata={"description": "^[a-z0-9-]+$, at most 100 characters, unique in the tenant"},
    )
    name = name_field(required=True)
    description = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=PROJECT_DESCRIPTION_MAX)
    )


class ProjectUpdateSchema(StrictSchema):
    openapi_example: ClassVar[dict[str, Any]] = {
        "name": "Website redesign (phase 2)",
        "description": "Landing page done; the documentation site is next",
    }

    name = name_field(required=False, allow_none=True)
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


PROJECT_READ = ProjectReadSchema()
