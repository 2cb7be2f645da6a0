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

The caller's worker is found as provisioning finds it (``provisioning.agent_key``): a human by
``sub``; an agent in ``tenant_id``, by ``api_key_id`` for a ``tf_`` key, else by
(``sub``, ``client_id``).

Every answer is a 200 with an explicit body, so a 404 always means "no such route".
"""

from __future__ import annotations

from typing import Any, Literal

import falcon
import falcon.asgi
import psycopg
import psycopg_pool
from marshmallow import Schema, fields, validate
from taskflow_core.auth.identity import Identity
from taskflow_core.errors import Forbidden, Unauthorized
from taskflow_core.routing import Operation, Route
from taskflow_core.schemas import QuerySchema, load_query, parse_id

from .callers.caller import agent_key
from .deps import TasksDeps

Access = Literal["owner", "member", "forbidden", "not_found"]
Conn = psycopg.AsyncConnection[Any]
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


# -- SQL ----------------------------------------------------------------------------------------
# The caller's worker as provisioning finds it: a human by SSO sub; an agent in its tenant by
# its API key id, or by the (sub, OAuth client) of its token.
_CALLER_WORKER = """
    SELECT id FROM tasks.workers
    WHERE CASE WHEN NOT %(agent)s THEN user_id = %(sub)s AND type = 'human'
               WHEN %(api_key_id)s::text IS NOT NULL
                    THEN type = 'agent' AND tenant_id = %(agent_tenant)s
                         AND api_key_id = %(api_key_id)s::text
               ELSE type = 'agent' AND tenant_id = %(agent_tenant)s
                    AND agent_sub = %(sub)s
                    AND agent_client_id IS NOT DISTINCT FROM %(client_id)s::text END
"""


def _caller_params(query: dict[str, Any]) -> dict[str, Any]:
    key = agent_key(
        Identity(
            sub=query["sub"],
            tenant_id=query["tenant_id"],
            actor_type="agent",
            client_id=query.get("client_id"),
            api_key_id=query.get("api_key_id"),
        )
    )
    return {
        "agent": query["actor_type"] == "agent",
        "sub": query["sub"],
        "agent_tenant": key.tenant_id,
        "api_key_id": key.api_key_id,
        "client_id": key.client_id,
    }


async def project_with_caller(conn: Conn, project_id: int, query: dict[str, Any]) -> Row | None:
    cur = await conn.execute(
        f"""
        WITH caller AS ({_CALLER_WORKER})
        SELECT p.id, p.tenant_id, p.owner_worker_id, p.deleted_at,
               (SELECT id FROM caller LIMIT 1) AS caller_worker_id,
               (SELECT m.role FROM tasks.project_members m
                 WHERE m.project_id = p.id AND m.worker_id IN (SELECT id FROM caller)
                 LIMIT 1) AS caller_role
        FROM tasks.projects p WHERE p.id = %(project_id)s
        """,
        {**_caller_params(query), "project_id": project_id},
    )
    return await cur.fetchone()


async def readable_project_ids(conn: Conn, query: dict[str, Any]) -> list[int]:
    cur = await conn.execute(
        f"""
        WITH caller AS ({_CALLER_WORKER})
        SELECT p.id FROM tasks.projects p
        WHERE p.tenant_id = %(tenant_id)s
          AND (p.owner_worker_id IN (SELECT id FROM caller)
               OR EXISTS (SELECT 1 FROM tasks.project_members m
                          WHERE m.project_id = p.id AND m.worker_id IN (SELECT id FROM caller)))
        ORDER BY p.id
        """,
        {**_caller_params(query), "tenant_id": query["tenant_id"]},
    )
    return [int(row["id"]) for row in await cur.fetchall()]


async def task_project(conn: Conn, task_id: int) -> Row | None:
    """The project and tenant of a task, live or deleted (``tasks.deleted_tasks``)."""
    cur = await conn.execute(
        "SELECT t.project_id, p.tenant_id"
        " FROM (SELECT project_id FROM tasks.tasks WHERE id = %(id)s"
        "       UNION ALL SELECT project_id FROM tasks.deleted_tasks WHERE id = %(id)s) t"
        " JOIN tasks.projects p ON p.id = t.project_id LIMIT 1",
        {"id": task_id},
    )
    return await cur.fetchone()


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


def _require_audit_service(req: falcon.asgi.Request) -> None:
    identity = getattr(req.context, "identity", None)
    if not isinstance(identity, Identity):
        raise Unauthorized("Not authenticated")
    if not identity.is_service or identity.client_id not in INTERNAL_CALLERS:
        raise Forbidden("Only the audit service may ask this")


class ProjectAccessResource:
    def __init__(self, pool: psycopg_pool.AsyncConnectionPool) -> None:
        self.pool = pool

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str
    ) -> None:
        _require_audit_service(req)
        pid = parse_id(project_id, "project_id")
        query = load_query(req, _CALLER_QUERY)
        async with self.pool.connection() as conn:
            project = await project_with_caller(conn, pid, query)
        access = decide_access(project, query["tenant_id"])
        deleted = access != "not_found" and project is not None and bool(project["deleted_at"])
        resp.media = {"project_id": pid, "access": access, "deleted": deleted}


class TaskProjectResource:
    def __init__(self, pool: psycopg_pool.AsyncConnectionPool) -> None:
        self.pool = pool

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str
    ) -> None:
        _require_audit_service(req)
        tid = parse_id(task_id, "task_id")
        async with self.pool.connection() as conn:
            row = await task_project(conn, tid)
        resp.media = {
            "task_id": tid,
            "project_id": None if row is None else int(row["project_id"]),
            "tenant_id": None if row is None else row["tenant_id"],
        }


class ReadableProjectsResource:
    def __init__(self, pool: psycopg_pool.AsyncConnectionPool) -> None:
        self.pool = pool

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        _require_audit_service(req)
        query = load_query(req, _CALLER_QUERY)
        async with self.pool.connection() as conn:
            ids = await readable_project_ids(conn, query)
        resp.media = {"project_ids": ids}


def internal_routes(deps: TasksDeps) -> list[Route]:
    """The tasks app's internal routes (``Route.internal``: service credentials only)."""
    pool = deps.pool
    return [
        Route(
            "/internal/tasks/projects/{project_id}/access",
            ProjectAccessResource(pool),
            (
                Operation(
                    "GET",
                    "May this caller read the project's history",
                    TAG,
                    response=AccessReplySchema,
                    query=CallerQuerySchema,
                ),
            ),
            internal=True,
        ),
        Route(
            "/internal/tasks/tasks/{task_id}/project",
            TaskProjectResource(pool),
            (Operation("GET", "The project of a task", TAG, response=TaskProjectReplySchema),),
            internal=True,
        ),
        Route(
            "/internal/tasks/readable-projects",
            ReadableProjectsResource(pool),
            (
                Operation(
                    "GET",
                    "Projects whose history the caller may read",
                    TAG,
                    response=ReadableProjectsReplySchema,
                    query=CallerQuerySchema,
                ),
            ),
            internal=True,
        ),
    ]
