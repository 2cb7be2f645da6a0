"""Tasks as collections: ``GET /api/tasks/recent``, and ``GET``/``POST`` on a project's
``/api/projects/{project_id}/tasks``; what a created task is made of (subtasks too)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from falcon.asgi import Request, Response
from taskflow_core.errors import APIError, BadRequest, Conflict, Forbidden, NotFound
from taskflow_core.schemas import load_body, load_query, parse_id

from ..callers.caller import Caller
from ..projects.access import NOT_A_MEMBER, PROJECT_NOT_FOUND
from ..writes.idempotency import IDEMPOTENCY_HEADER, idempotent_post
from . import inserts, queries
from . import workflow as wf
from .resource import TaskResource, answer, autocommit
from .schemas import RECENT_QUERY, TASK_CREATE, TASK_LIST_QUERY, task_list_item

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]


class RecentTasks(TaskResource):
    async def on_get(self, req: Request, resp: Response) -> None:
        query = load_query(req, RECENT_QUERY)
        async with autocommit(self.pool) as conn:
            caller = await self.caller(req, conn)
            cur = await queries.send_recent(
                conn, tenant_id=caller.tenant_id, worker_id=caller.worker_id, limit=query["limit"]
            )
        resp.media = [task_list_item(row) for row in await cur.fetchall()]


def _list_filters(query: dict[str, Any]) -> queries.ListFilters:
    tags = tuple(t.strip() for t in (query.get("tags") or "").split(",") if t.strip())
    return queries.ListFilters(
        status=query.get("status"),
        assignee_id=query.get("assignee_id"),
        priority=query.get("priority"),
        search=query.get("search") or None,
        tags=tags,
        has_due_date=query.get("has_due_date"),
        sort_by=query["sort_by"],
        sort_order=query["sort_order"],
        limit=query["limit"],
        offset=query["offset"],
    )


class ProjectTasks(TaskResource):
    async def on_get(self, req: Request, resp: Response, project_id: str) -> None:
        pid = parse_id(project_id, "project_id")
        filters = _list_filters(load_query(req, TASK_LIST_QUERY))
        async with autocommit(self.pool) as conn:
            caller = await self.caller(req, conn)
            cur = await queries.send_list(
                conn, pid, filters, tenant_id=caller.tenant_id, worker_id=caller.worker_id
            )
        found = queries.list_result(await cur.fetchall())
        if found is None:
            raise NotFound(PROJECT_NOT_FOUND)
        role, items = found
        if role is None:
            raise Forbidden(NOT_A_MEMBER)
        resp.media = items

    async def on_post(self, req: Request, resp: Response, project_id: str) -> None:
        pid = parse_id(project_id, "project_id")
        body = await load_body(req, TASK_CREATE)
        if req.get_header(IDEMPOTENCY_HEADER) is not None:
            await self.create_idempotently(req, resp, pid, body)
            return
        # Autocommit: the create and its event are one statement, so one round trip.
        async with autocommit(self.pool) as conn:
            caller = await self.caller(req, conn)
            row = await self.create(conn, caller, pid, body, self.settings.clock())
        answer(resp, row, created=True)

    async def create_idempotently(
        self, req: Request, resp: Response, pid: int, body: dict[str, Any]
    ) -> None:
        async def create(conn: Conn, caller: Caller, now: datetime) -> None:
            answer(resp, await self.create(conn, caller, pid, body, now), created=True)

        await idempotent_post(self.deps, req, resp, create)

    async def create(
        self, conn: Conn, caller: Caller, pid: int, body: dict[str, Any], now: datetime
    ) -> Row:
        """Insert the task with its "created" event, or raise why the caller may not."""
        values = new_task(body, pid, caller, now, parent=body["parent_task_id"])
        event = caller.author.task_event(values, "created", created_details(values), now)
        try:
            row = await inserts.create_checked(
                conn, values, event, tenant_id=caller.tenant_id, worker_id=caller.worker_id
            )
        except psycopg.errors.ForeignKeyViolation as exc:
            # The parent or the assignee was deleted between the check and the insert.
            raise Conflict("A task or worker this task refers to was just deleted") from exc
        if row is None:
            raise NotFound(PROJECT_NOT_FOUND)
        if row["id"] is None:
            raise create_refusal(row, body, pid)
        return row


def new_task(
    body: dict[str, Any], project_id: int, caller: Caller, now: datetime, parent: int | None
) -> dict[str, Any]:
    """The columns of a task created from a TaskCreate body."""
    return {
        "project_id": project_id,
        "title": body["title"],
        "description": body["description"],
        "priority": body["priority"],
        "tags": body["tags"],
        "due_date": body["due_date"],
        "is_recurring": body["is_recurring"],
        "recurrence_pattern": body["recurrence_pattern"],
        "max_occurrences": body["max_occurrences"],
        "recurrence_trigger": body["recurrence_trigger"],
        "clone_subtasks_on_recur": body["clone_subtasks_on_recur"],
        "assignee_id": body["assignee_id"],
        "parent_task_id": parent,
        "created_by_id": caller.worker_id,
        "created_at": now,
        "updated_at": now,
    }


def created_details(row: Row, *, is_subtask: bool = False) -> dict[str, Any]:
    details: dict[str, Any] = {
        "title": row["title"],
        "priority": row["priority"],
        "assignee_id": row["assignee_id"],
        "is_recurring": row["is_recurring"],
        "recurrence_pattern": row["recurrence_pattern"],
        "recurrence_trigger": row["recurrence_trigger"],
        "due_date": row["due_date"],
        "parent_task_id": row["parent_task_id"],
    }
    if is_subtask:
        details["is_subtask"] = True
    return details


def create_refusal(checks: Row, body: dict[str, Any], project_id: int) -> APIError:
    """Why create_checked inserted nothing, in the order the old API checked."""
    if checks["caller_role"] is None:
        return Forbidden(NOT_A_MEMBER)
    if body["assignee_id"] is not None and checks["member_handle"] is None:
        return BadRequest(f"Worker {body['assignee_id']} is not a member of this project")
    problem = wf.parent_error(
        parent_project_id=checks["parent_project_id"],
        project_id=project_id,
        parent_id=body["parent_task_id"],
    )
    return problem or APIError(409, "Task could not be created, retry")
