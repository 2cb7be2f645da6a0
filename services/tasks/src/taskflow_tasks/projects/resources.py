"""Projects: ``/api/projects`` and ``/api/projects/{project_id}`` (reference §1.2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from falcon.asgi import Request, Response
from taskflow_core.errors import BadRequest
from taskflow_core.routing import OperationFamily, Route
from taskflow_core.schemas import PageQuerySchema, load_body, load_query, parse_id

from ..callers.caller import Caller
from ..deps import Resource, TasksDeps, answer_created
from ..outbox.events import record
from ..writes.diff import field_changes
from ..writes.idempotency import IDEMPOTENCY_HEADER, idempotent_post
from ..writes.preconditions import IF_MATCH_HEADER, check_if_match, etag
from . import access, rules, store
from .schemas import (
    PROJECT_READ,
    ProjectCreateSchema,
    ProjectDeletedSchema,
    ProjectDeleteQuerySchema,
    ProjectReadSchema,
    ProjectUpdateSchema,
)

TAG = "projects"
PROJECT_EXAMPLE = {
    "id": 7,
    "slug": "website-redesign",
    "name": "Website redesign",
    "description": "Q1 refresh of the marketing site",
    "owner_id": "user-5f1c2a9e",
    "is_default": False,
    "tenant_id": "acme-org",
    "member_count": 3,
    "task_count": 12,
    "created_at": "2025-12-10T08:15:30.123456+00:00",
    "updated_at": "2025-12-11T09:00:00+00:00",
}
Conn = psycopg.AsyncConnection[Any]
IF_MATCH = (IF_MATCH_HEADER,)
IDEMPOTENCY = (IDEMPOTENCY_HEADER,)

_page = PageQuerySchema()
_create = ProjectCreateSchema()
_update = ProjectUpdateSchema()
_delete_query = ProjectDeleteQuerySchema()


def project_etag(project: dict[str, Any]) -> str:
    return etag("project", project["id"], project["updated_at"])


def _respond(resp: Response, project: dict[str, Any]) -> None:
    resp.media = PROJECT_READ.dump(project)
    resp.set_header("ETag", project_etag(project))


class ProjectCollection(Resource):
    async def on_get(self, req: Request, resp: Response) -> None:
        page = load_query(req, _page)
        async with self.deps.reading(req) as (conn, caller):
            rows = await store.list_for_member(
                conn, caller.worker_id, caller.tenant_id, page["limit"], page["offset"]
            )
        resp.media = PROJECT_READ.dump(rows, many=True)

    async def on_post(self, req: Request, resp: Response) -> None:
        body = await load_body(req, _create)

        async def create(conn: Conn, caller: Caller, now: datetime) -> None:
            new = store.NewProject(
                tenant_id=caller.tenant_id,
                owner_id=caller.sub,
                owner_worker_id=caller.worker_id,
                **body,
            )
            project = await store.insert_project(conn, new, now)
            if project is None:
                raise BadRequest(
                    f"Project slug '{body['slug']}' already exists in your organization"
                )
            details = {
                "slug": project["slug"],
                "name": project["name"],
                "tenant_id": caller.tenant_id,
            }
            await record(conn, caller.author.project_event(project["id"], "created", details, now))
            location = f"/api/projects/{project['id']}"
            answer_created(resp, PROJECT_READ.dump(project), location, project_etag(project))

        await idempotent_post(self.deps, req, resp, create)


class ProjectItem(Resource):
    async def on_get(self, req: Request, resp: Response, project_id: str) -> None:
        pid = parse_id(project_id, "project_id")
        async with self.deps.reading(req) as (conn, caller):
            project = await access.project_for_member(conn, caller, pid)
        _respond(resp, project)

    async def on_put(self, req: Request, resp: Response, project_id: str) -> None:
        pid = parse_id(project_id, "project_id")
        body = await load_body(req, _update)
        async with self.deps.writing(req) as (conn, caller):
            project = await access.project_for_owner(
                conn, caller, pid, rules.UPDATE_OWNER_ONLY, lock=True
            )
            check_if_match(req, project_etag(project))
            changes = field_changes(project, body, nullable=("description",))
            if changes:
                now = self.deps.settings.clock()
                project = await store.update_project(
                    conn, pid, {k: v["after"] for k, v in changes.items()}, now
                )
                details = {**changes, "tenant_id": caller.tenant_id}
                await record(conn, caller.author.project_event(pid, "updated", details, now))
        _respond(resp, project)

    async def on_delete(self, req: Request, resp: Response, project_id: str) -> None:
        pid = parse_id(project_id, "project_id")
        force = load_query(req, _delete_query)["force"]
        async with self.deps.writing(req) as (conn, caller):
            project = await access.project_for_owner(
                conn, caller, pid, rules.DELETE_OWNER_ONLY, lock=True
            )
            check_if_match(req, project_etag(project))
            rules.check_project_deletable(project, force=force)
            now = self.deps.settings.clock()
            removed = await store.delete_tasks(conn, pid) if force else []
            # One event per removed task, pipelined: one round trip for all of them.
            async with conn.pipeline():
                for task in removed:
                    details = {
                        "title": task["title"],
                        "status": task["status"],
                        "parent_task_id": task["parent_task_id"],
                        "reason": "project_deleted",
                    }
                    event = caller.author.task_event(
                        {**task, "project_id": pid}, "deleted", details, now
                    )
                    await record(conn, event)
                await store.soft_delete(conn, pid, now)
                details = {
                    "slug": project["slug"],
                    "force": force,
                    "task_count": project["task_count"],
                    "tenant_id": caller.tenant_id,
                }
                await record(conn, caller.author.project_event(pid, "deleted", details, now))
        resp.media = {"ok": True, "deleted_tasks": len(removed)}


# The operations: what each says beyond its schemas. Unless one says otherwise, an operation
# answers a project (ProjectRead).
_project = OperationFamily(TAG, response=ProjectReadSchema, example=PROJECT_EXAMPLE)
_LIST = _project.get(
    "listProjects",
    "List my projects",
    "Projects of the current tenant you are a member of: the Default project first, then "
    "oldest first (id as tiebreaker).",
    many=True,
    query=PageQuerySchema,
)
_CREATE = _project.post(
    "createProject",
    "Create a project",
    "You become its owner. 400 when the slug exists in the tenant.",
    status=201,
    request=ProjectCreateSchema,
    errors=(400,),
    example={**PROJECT_EXAMPLE, "member_count": 1, "task_count": 0},
    headers=IDEMPOTENCY,
    creates="project_id",
)
_GET = _project.get(
    "getProject",
    "Get a project",
    "404 outside your tenant, 403 when not a member. Sends an ETag.",
    errors=(403, 404),
)
_UPDATE = _project.put(
    "updateProject",
    "Update a project",
    "Owner only. Absent fields are unchanged; null clears the description. If-Match "
    "(optional): 412 when stale.",
    request=ProjectUpdateSchema,
    errors=(403, 404, 412),
    headers=IF_MATCH,
)
_DELETE = _project.delete(
    "deleteProject",
    "Delete a project",
    "Owner only; not the Default project; with tasks only with force=true (each removed task "
    "is audited). Its history stays readable.",
    response=ProjectDeletedSchema,
    query=ProjectDeleteQuerySchema,
    errors=(400, 403, 404, 412),
    example={"ok": True, "deleted_tasks": 4},
    headers=IF_MATCH,
)


def project_routes(deps: TasksDeps) -> list[Route]:
    return [
        Route("/api/projects", ProjectCollection(deps), (_LIST, _CREATE)),
        Route("/api/projects/{project_id}", ProjectItem(deps), (_GET, _UPDATE, _DELETE)),
    ]
