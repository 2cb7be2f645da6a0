"""One task: ``GET``, ``PUT`` and ``DELETE`` on ``/api/tasks/{task_id}``."""

from __future__ import annotations

from typing import Any

import psycopg
from falcon.asgi import Request, Response
from taskflow_core.errors import BadRequest, Conflict, Forbidden, NotFound, validation_error
from taskflow_core.schemas import load_body, parse_id

from ..projects.access import NOT_A_MEMBER
from . import queries, store
from . import workflow as wf
from .resource import (
    TASK_NOT_FOUND,
    TaskResource,
    answer,
    autocommit,
    check_may_modify,
    task_etag,
    writable,
)
from .schemas import RECURRING_NEEDS_PATTERN, TASK_UPDATE, task_read

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]


class TaskItem(TaskResource):
    async def on_get(self, req: Request, resp: Response, task_id: str) -> None:
        tid = parse_id(task_id, "task_id")
        async with autocommit(self.pool) as conn:
            caller = await self.caller(req, conn)
            cur = await queries.send_with_subtasks(
                conn, tid, tenant_id=caller.tenant_id, worker_id=caller.worker_id
            )
        row, subtasks = queries.task_and_subtasks(await cur.fetchall(), tid)
        if row is None:
            raise NotFound(TASK_NOT_FOUND)
        if row["caller_role"] is None:
            raise Forbidden(NOT_A_MEMBER)
        resp.media = task_read(row, subtasks)
        resp.set_header("ETag", task_etag(row))

    async def on_put(self, req: Request, resp: Response, task_id: str) -> None:
        tid = parse_id(task_id, "task_id")
        body = await load_body(req, TASK_UPDATE)
        async with self.deps.writing(req) as (conn, caller):
            if body.get("parent_task_id") is not None:
                await store.lock_hierarchy(conn, caller.tenant_id)
            row = await self.locked(conn, req, caller, tid)
            check_may_modify(row, caller)
            changes = {
                name: body[name]
                for name in store.EDITABLE
                if name in body and body[name] != row[name]
            }
            merged = {**row, **changes}
            if changes.get("recurrence_pattern") and not merged["is_recurring"]:
                # Giving a pattern makes the task recurring, as on create.
                changes["is_recurring"] = merged["is_recurring"] = True
            if merged["is_recurring"] and not merged["recurrence_pattern"]:
                if body.get("is_recurring") and "recurrence_pattern" in body:
                    # The body alone breaks the documented rule: a validation error.
                    raise validation_error({"recurrence_pattern": [RECURRING_NEEDS_PATTERN]})
                # Valid on its own, but not with the task as stored.
                raise BadRequest(RECURRING_NEEDS_PATTERN)
            if changes.get("parent_task_id") is not None:
                await _check_new_parent(conn, row, changes["parent_task_id"])
            now = self.settings.clock() if changes else row["updated_at"]
            cur = await store.send_update(conn, tid, changes, now)
            if changes:  # a no-op update records nothing and keeps the ETag
                details = {name: {"before": row[name], "after": changes[name]} for name in changes}
                await self.event(conn, caller, row, "updated", details, now)
        answer(resp, await store.one_row(cur))

    async def on_delete(self, req: Request, resp: Response, task_id: str) -> None:
        tid = parse_id(task_id, "task_id")
        async with self.deps.writing(req) as (conn, caller):
            # Checked before any lock is taken, and again once the subtree is locked (leaves
            # first, this task last: store.subtree_ids says why).
            unlocked = await store.read_for_change(
                conn, tid, tenant_id=caller.tenant_id, worker_id=caller.worker_id
            )
            check_may_modify(writable(req, unlocked), caller)
            ids = await store.subtree_ids(conn, tid)
            row = await self.locked(conn, req, caller, tid)
            check_may_modify(row, caller)
            now = self.settings.clock()
            # Occurrences of a deleted series original stay, under the oldest of them.
            moved = await store.reroot_series(conn, ids, now)
            try:
                deleted = await store.delete_tasks(conn, ids)
            except psycopg.errors.ForeignKeyViolation as exc:  # a subtask was added meanwhile
                raise Conflict("The task changed while it was being deleted; retry") from exc
            for gone in deleted:
                if gone["id"] == tid:
                    details = {
                        "title": gone["title"],
                        "status": gone["status"],
                        "subtasks_deleted": len(deleted) - 1,
                    }
                else:
                    details = {
                        "title": gone["title"],
                        "status": gone["status"],
                        "parent_task_id": gone["parent_task_id"],
                        "deleted_with": tid,
                    }
                await self.event(conn, caller, gone, "deleted", details, now)
            for task in moved:
                details = {"recurring_root_id": {"before": task["before"], "after": task["after"]}}
                await self.event(conn, caller, task, "updated", details, now)
        resp.media = {"ok": True}


async def _check_new_parent(conn: Conn, row: Row, new_parent_id: int) -> None:
    """Re-parenting: same project, and never under itself or its own descendants."""
    problem = wf.parent_error(
        parent_project_id=await queries.parent_project(conn, new_parent_id),
        project_id=row["project_id"],
        parent_id=new_parent_id,
    )
    if problem is not None:
        raise problem
    wf.check_reparent(
        task_id=row["id"],
        new_parent_id=new_parent_id,
        ancestors_of_new_parent=await queries.ancestors(conn, new_parent_id),
    )
