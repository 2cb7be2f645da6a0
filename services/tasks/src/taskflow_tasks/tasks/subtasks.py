"""``POST /api/tasks/{task_id}/subtasks``: a task created under another, in its project."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from falcon.asgi import Request, Response
from taskflow_core.errors import BadRequest, Forbidden, NotFound
from taskflow_core.schemas import load_body, parse_id

from ..callers.caller import Caller
from ..projects.access import NOT_A_MEMBER
from ..writes.idempotency import idempotent_post
from . import inserts, queries, store
from .collection import created_details, new_task
from .resource import TaskResource, answer
from .schemas import TASK_CREATE

Conn = psycopg.AsyncConnection[Any]


class Subtasks(TaskResource):
    async def on_post(self, req: Request, resp: Response, task_id: str) -> None:
        tid = parse_id(task_id, "task_id")
        body = await load_body(req, TASK_CREATE)
        # The parent is the task in the path; a body's parent_task_id is ignored, as the
        # reference did (the body is a TaskCreate, shared with the project-level create).
        body["parent_task_id"] = tid

        async def create(conn: Conn, caller: Caller, now: datetime) -> None:
            parent = await store.lock_for_change(
                conn, tid, tenant_id=caller.tenant_id, worker_id=caller.worker_id
            )
            if parent is None:
                raise NotFound("Parent task not found")
            if parent["caller_role"] is None:
                raise Forbidden(NOT_A_MEMBER)
            assignee = body["assignee_id"]
            if (
                assignee is not None
                and await queries.member_handle(conn, parent["project_id"], assignee) is None
            ):
                raise BadRequest(f"Worker {assignee} is not a member of this project")
            values = new_task(body, parent["project_id"], caller, now, parent=tid)
            row = await inserts.insert_task(conn, values)
            details = created_details(row, is_subtask=True)
            await self.event(conn, caller, row, "created", details, now)
            answer(resp, row, created=True)

        await idempotent_post(self.deps, req, resp, create)
