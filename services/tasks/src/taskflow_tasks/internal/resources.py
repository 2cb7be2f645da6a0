"""Internal endpoints the audit service calls (service credentials only, never via the gateway).

Each takes the caller as the audit service saw its verified identity (``<caller>``: ``sub``,
``tenant_id``, ``actor_type``, ``client_id``, ``api_key_id``).
- ``GET /internal/tasks/projects/{project_id}/access?<caller>``: may this caller read project
  P's history? → ``{"project_id", "access", "deleted"}`` with ``access`` = ``owner`` |
  ``member`` | ``forbidden`` (same tenant, not a member) | ``not_found`` (unknown project or
  another tenant's). Deleted projects still answer: the project row and its memberships are
  kept (soft delete) so their history stays readable.
- ``GET /internal/tasks/tasks/{task_id}/project`` → ``{"task_id", "project_id", "tenant_id"}``
  of a live or deleted task (``null``s for a task that never existed).
- ``GET /internal/tasks/readable-projects?<caller>`` → ``{"project_ids": [...]}``: every
  project of the tenant the caller owns or belongs to, deleted ones included.

The caller's worker is found as provisioning finds it (``callers.caller.agent_key``): a human by
``sub``; an agent in ``tenant_id``, by ``api_key_id`` for a ``tf_`` key, else by
(``sub``, ``client_id``).

Every answer is a 200 with an explicit body, so a 404 always means "no such route".
"""

from __future__ import annotations

from typing import Any, Literal

from falcon.asgi import Request, Response
from marshmallow import Schema, fields, validate
from taskflow_core.auth.identity import Identity
from taskflow_core.errors import Forbidden, Unauthorized
from taskflow_core.routing import OperationFamily, Route
from taskflow_core.schemas import QuerySchema, load_query, parse_id

from ..deps import Resource, TasksDeps
from .store import project_with_caller, readable_project_ids, task_project

Access = Literal["owner", "member", "forbidden", "not_found"]
Row = dict[str, Any]
TAG = "internal"
# Only the audit service asks these questions.
INTERNAL_CALLERS = frozenset({"audit"})


# -- the rule (pure) ----------------------------------------------------------------------------
def decide_access(project: Row | None, tenant_id: str) -> Access:
    """Owners and members of a project in the caller's tenant may read its history.

    ``project`` carries ``tenant_id``, ``owner_worker_id``, ``caller_worker_id`` and
    ``caller_role`` (the caller's membership role, or None)."""
    if project is None or project["tenant_id"] != tenant_id:
        return "not_found"
    caller = project.get("caller_worker_id")
    if caller is not None and (
        project.get("caller_role") == "owner" or project["owner_worker_id"] == caller
    ):
        return "owner"
    if caller is not None and project.get("caller_role") is not None:
        return "member"
    return "forbidden"


# -- HTTP ---------------------------------------------------------------------------------------
class CallerQuerySchema(QuerySchema):
    """Who is asking (as the audit service saw the verified identity)."""

    sub = fields.String(required=True, validate=validate.Length(min=1, max=255))
    tenant_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    actor_type = fields.String(load_default="human", validate=validate.OneOf(("human", "agent")))
    client_id = fields.String(load_default=None, validate=validate.Length(min=1, max=255))
    api_key_id = fields.String(load_default=None, validate=validate.Length(min=1, max=255))


class AccessReplySchema(Schema):
    project_id = fields.Integer()
    access = fields.String(metadata={"description": "owner | member | forbidden | not_found"})
    deleted = fields.Boolean()


class TaskProjectReplySchema(Schema):
    task_id = fields.Integer()
    project_id = fields.Integer(allow_none=True)
    tenant_id = fields.String(allow_none=True)


class ReadableProjectsReplySchema(Schema):
    project_ids = fields.List(fields.Integer())


_CALLER_QUERY = CallerQuerySchema()


def _require_audit_service(req: Request) -> None:
    identity = getattr(req.context, "identity", None)
    if not isinstance(identity, Identity):
        raise Unauthorized("Not authenticated")
    if not identity.is_service or identity.client_id not in INTERNAL_CALLERS:
        raise Forbidden("Only the audit service may ask this")


class ProjectAccessResource(Resource):
    async def on_get(self, req: Request, resp: Response, project_id: str) -> None:
        _require_audit_service(req)
        pid = parse_id(project_id, "project_id")
        query = load_query(req, _CALLER_QUERY)
        async with self.deps.pool.connection() as conn:
            project = await project_with_caller(conn, pid, query)
        access = decide_access(project, query["tenant_id"])
        deleted = access != "not_found" and project is not None and bool(project["deleted_at"])
        resp.media = {"project_id": pid, "access": access, "deleted": deleted}


class TaskProjectResource(Resource):
    async def on_get(self, req: Request, resp: Response, task_id: str) -> None:
        _require_audit_service(req)
        tid = parse_id(task_id, "task_id")
        async with self.deps.pool.connection() as conn:
            row = await task_project(conn, tid)
        resp.media = {
            "task_id": tid,
            "project_id": None if row is None else int(row["project_id"]),
            "tenant_id": None if row is None else row["tenant_id"],
        }


class ReadableProjectsResource(Resource):
    async def on_get(self, req: Request, resp: Response) -> None:
        _require_audit_service(req)
        query = load_query(req, _CALLER_QUERY)
        async with self.deps.pool.connection() as conn:
            ids = await readable_project_ids(conn, query)
        resp.media = {"project_ids": ids}


# Internal routes answer with their schemas alone: the audit service is their only reader.
_internal = OperationFamily(TAG, query=CallerQuerySchema)
_ACCESS = _internal.get(
    "getProjectHistoryAccess",
    "May this caller read the project's history",
    response=AccessReplySchema,
)
_TASK_PROJECT = _internal.get(
    "getTaskProject", "The project of a task", response=TaskProjectReplySchema, query=None
)
_READABLE = _internal.get(
    "listReadableProjects",
    "Projects whose history the caller may read",
    response=ReadableProjectsReplySchema,
)


def internal_routes(deps: TasksDeps) -> list[Route]:
    """The tasks app's internal routes (``Route.internal``: service credentials only)."""
    return [
        Route(
            "/internal/tasks/projects/{project_id}/access",
            ProjectAccessResource(deps),
            (_ACCESS,),
            internal=True,
        ),
        Route(
            "/internal/tasks/tasks/{task_id}/project",
            TaskProjectResource(deps),
            (_TASK_PROJECT,),
            internal=True,
        ),
        Route(
            "/internal/tasks/readable-projects",
            ReadableProjectsResource(deps),
            (_READABLE,),
            internal=True,
        ),
    ]
