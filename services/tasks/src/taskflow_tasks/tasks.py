"""Task endpoints: HTTP only. Each responder loads its input, runs the domain rules of
``workflow`` on rows from ``store_tasks``, records one audit event per changed task in the same
transaction, and answers with the shapes of ``task_schemas``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import falcon
import falcon.asgi
import psycopg
import psycopg_pool
from taskflow_core.errors import (
    APIError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    validation_error,
)
from taskflow_core.routing import Operation, Route
from taskflow_core.schemas import OkSchema, load_body, load_query, parse_id

from . import store_tasks
from . import workflow as wf
from .callers.caller import Caller, identity_of
from .deps import TasksDeps
from .outbox.events import OutboxEvent, build_event
from .projects.access import NOT_A_MEMBER, PROJECT_NOT_FOUND
from .scheduler import spawn_next_occurrence
from .task_schemas import (
    ASSIGN_UPDATE,
    EXAMPLE_LIST_ITEM,
    EXAMPLE_TASK,
    PROGRESS_UPDATE,
    RECENT_QUERY,
    RECURRING_NEEDS_PATTERN,
    REJECT,
    STATUS_UPDATE,
    TASK_CREATE,
    TASK_LIST_QUERY,
    TASK_UPDATE,
    AssignUpdateSchema,
    ProgressUpdateSchema,
    RecentQuerySchema,
    RejectSchema,
    StatusUpdateSchema,
    TaskCreateSchema,
    TaskListItemSchema,
    TaskListQuerySchema,
    TaskReadSchema,
    TaskUpdateSchema,
    task_list_item,
    task_read,
)
from .writes.idempotency import IDEMPOTENCY_HEADER, idempotent_post
from .writes.preconditions import check_if_match, etag

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]
# A change as one guarded statement, its event's action and details.
Guarded = tuple[store_tasks.GuardedChange, str, dict[str, Any]]

TASK_NOT_FOUND = "Task not found"
TAG = "tasks"


@asynccontextmanager
async def _autocommit(pool: psycopg_pool.AsyncConnectionPool) -> AsyncIterator[Conn]:
    """A pooled connection in autocommit, to save round trips on the hot paths: a read or a
    change of one statement is its own transaction (a create with its event, a guarded
    UPDATE with its event), and a change that must lock opens its transaction with BEGIN in
    the same round trip as its first statement and COMMITs in the same round trip as its last
    (``store_tasks.begin_and_lock`` / ``update_and_commit``). Whatever is left open on the
    way out (an error) is rolled back."""
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        try:
            yield conn
        finally:
            if not conn.closed:
                await _reset(conn)


async def _reset(conn: Conn) -> None:
    """Roll back an open transaction and leave autocommit off, as the pool hands it out."""
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await conn.execute("ROLLBACK")
        await conn.set_autocommit(False)
    except psycopg.Error:
        await conn.close()  # the pool discards a closed connection


def _task_etag(row: Row) -> str:
    return etag("task", row["id"], row["updated_at"])


def _answer(resp: falcon.asgi.Response, row: Row, status: int = 200) -> None:
    resp.status = status
    resp.media = task_read(row)
    resp.set_header("ETag", _task_etag(row))


def _spawns_next(row: Row) -> bool:
    """Whether completing this task creates its next occurrence."""
    return wf.should_spawn_on_complete(
        is_recurring=row["is_recurring"],
        pattern=row["recurrence_pattern"],
        trigger=row["recurrence_trigger"],
        has_spawned_next=row["has_spawned_next"],
    )


def _changed(row: Row, changes: dict[str, Any]) -> dict[str, Any]:
    """Only the columns that differ: a smaller statement to bind and run."""
    return {name: value for name, value in changes.items() if row[name] != value}


def _task_event(
    caller: Caller, row: Row, action: str, details: dict[str, Any], now: datetime
) -> OutboxEvent:
    """The audit event of a change to ``row`` (``row["id"]`` may be absent for a create: the
    INSERT fills it in), to write in the statement that makes the change."""
    return build_event(
        tenant_id=caller.tenant_id,
        project_id=row["project_id"],
        entity_type="task",
        entity_id=row.get("id"),
        action=action,
        actor=caller.actor,
        details=details,
        occurred_at=now,
    )


class _TaskResource:
    def __init__(self, deps: TasksDeps) -> None:
        self.deps = deps
        self.pool = deps.pool
        self.settings = deps.settings
        self.provisioner = deps.provisioner

    async def caller(self, req: falcon.asgi.Request, conn: Conn) -> Caller:
        return await self.provisioner.caller(identity_of(req), conn)

    async def locked(
        self, conn: Conn, req: falcon.asgi.Request, caller: Caller, task_id: int
    ) -> Row:
        """The task locked for this write: 404 outside the tenant, 403 for non-members, 412
        when ``If-Match`` names another version."""
        row = await store_tasks.lock_for_change(
            conn, task_id, tenant_id=caller.tenant_id, worker_id=caller.worker_id
        )
        return _writable(req, row)

    async def event(
        self,
        conn: Conn,
        caller: Caller,
        row: Row,
        action: str,
        details: dict[str, Any],
        now: datetime,
    ) -> None:
        await conn.execute(
            OutboxEvent.INSERT, _task_event(caller, row, action, details, now).params()
        )

    async def complete_recurring(self, conn: Conn, caller: Caller, row: Row, now: datetime) -> None:
        """Spawn the next occurrence when a recurring task completes (trigger permitting)."""
        if _spawns_next(row):
            await spawn_next_occurrence(
                conn,
                row,
                tenant_id=caller.tenant_id,
                actor=caller.actor,
                created_by_id=caller.worker_id,
                now=now,
                when_due=False,
            )


def _writable(req: falcon.asgi.Request, row: Row | None) -> Row:
    """404 outside the tenant, 403 for non-members, 412 when ``If-Match`` is stale."""
    if row is None:
        raise NotFound(TASK_NOT_FOUND)
    if row["caller_role"] is None:
        raise Forbidden(NOT_A_MEMBER)
    check_if_match(req, _task_etag(row))
    return row


def _is_owner(row: Row) -> bool:
    return row["caller_role"] == "owner"


def _check_may_modify(row: Row, caller: Caller) -> None:
    wf.check_may_modify(
        assignee_id=row["assignee_id"], caller_worker_id=caller.worker_id, is_owner=_is_owner(row)
    )


def _check_may_review(row: Row, caller: Caller) -> None:
    wf.check_may_review(
        assignee_id=row["assignee_id"], caller_worker_id=caller.worker_id, is_owner=_is_owner(row)
    )


# --- reads ---------------------------------------------------------------------------------


class RecentTasksResource(_TaskResource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        query = load_query(req, RECENT_QUERY)
        async with _autocommit(self.pool) as conn:
            caller = await self.caller(req, conn)
            cur = await store_tasks.send_recent(
                conn, tenant_id=caller.tenant_id, worker_id=caller.worker_id, limit=query["limit"]
            )
        resp.media = [task_list_item(row) for row in await cur.fetchall()]


def _list_filters(query: dict[str, Any]) -> store_tasks.ListFilters:
    tags = tuple(t.strip() for t in (query.get("tags") or "").split(",") if t.strip())
    return store_tasks.ListFilters(
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


class ProjectTasksResource(_TaskResource):
    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str
    ) -> None:
        pid = parse_id(project_id, "project_id")
        filters = _list_filters(load_query(req, TASK_LIST_QUERY))
        async with _autocommit(self.pool) as conn:
            caller = await self.caller(req, conn)
            cur = await store_tasks.send_list(
                conn, pid, filters, tenant_id=caller.tenant_id, worker_id=caller.worker_id
            )
        found = store_tasks.list_result(await cur.fetchall())
        if found is None:
            raise NotFound(PROJECT_NOT_FOUND)
        role, items = found
        if role is None:
            raise Forbidden(NOT_A_MEMBER)
        resp.media = items

    async def on_post(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str
    ) -> None:
        pid = parse_id(project_id, "project_id")
        body = await load_body(req, TASK_CREATE)
        if req.get_header(IDEMPOTENCY_HEADER) is not None:
            await self.create_idempotently(req, resp, pid, body)
            return
        # Autocommit: the create and its event are one statement, so one round trip.
        async with _autocommit(self.pool) as conn:
            caller = await self.caller(req, conn)
            row = await self.create(conn, caller, pid, body, self.settings.clock())
        _created(resp, row)

    async def create_idempotently(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, pid: int, body: dict[str, Any]
    ) -> None:
        async def create(conn: Conn, caller: Caller, now: datetime) -> None:
            _created(resp, await self.create(conn, caller, pid, body, now))

        await idempotent_post(self.deps, req, resp, create)

    async def create(
        self, conn: Conn, caller: Caller, pid: int, body: dict[str, Any], now: datetime
    ) -> Row:
        """Insert the task with its "created" event, or raise why the caller may not."""
        values = _new_task(body, pid, caller, now, parent=body["parent_task_id"])
        event = _task_event(caller, values, "created", _created_details(values), now)
        try:
            row = await store_tasks.create_checked(
                conn, values, event, tenant_id=caller.tenant_id, worker_id=caller.worker_id
            )
        except psycopg.errors.ForeignKeyViolation as exc:
            # The parent or the assignee was deleted between the check and the insert.
            raise Conflict("A task or worker this task refers to was just deleted") from exc
        if row is None:
            raise NotFound(PROJECT_NOT_FOUND)
        if row["id"] is None:
            raise _create_refusal(row, body, pid)
        return row


def _new_task(
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


def _created_details(row: Row, *, is_subtask: bool = False) -> dict[str, Any]:
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


def _create_refusal(checks: Row, body: dict[str, Any], project_id: int) -> APIError:
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


def _created(resp: falcon.asgi.Response, row: Row) -> None:
    _answer(resp, row, status=201)
    resp.set_header("Location", f"/api/tasks/{row['id']}")


# --- one task --------------------------------------------------------------------------------

# PUT fields and the columns they write; audit "updated" lists each change as before/after.
_PUT_FIELDS = (
    "title",
    "description",
    "priority",
    "tags",
    "due_date",
    "is_recurring",
    "recurrence_pattern",
    "max_occurrences",
    "recurrence_trigger",
    "clone_subtasks_on_recur",
    "parent_task_id",
)


class TaskResource(_TaskResource):
    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str
    ) -> None:
        tid = parse_id(task_id, "task_id")
        async with _autocommit(self.pool) as conn:
            caller = await self.caller(req, conn)
            cur = await store_tasks.send_with_subtasks(
                conn, tid, tenant_id=caller.tenant_id, worker_id=caller.worker_id
            )
        row, subtasks = store_tasks.task_and_subtasks(await cur.fetchall(), tid)
        if row is None:
            raise NotFound(TASK_NOT_FOUND)
        if row["caller_role"] is None:
            raise Forbidden(NOT_A_MEMBER)
        resp.media = task_read(row, subtasks)
        resp.set_header("ETag", _task_etag(row))

    async def on_put(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str
    ) -> None:
        tid = parse_id(task_id, "task_id")
        body = await load_body(req, TASK_UPDATE)
        async with self.deps.writing(req) as (conn, caller):
            if body.get("parent_task_id") is not None:
                await store_tasks.lock_hierarchy(conn, caller.tenant_id)
            row = await self.locked(conn, req, caller, tid)
            _check_may_modify(row, caller)
            changes = {
                name: body[name] for name in _PUT_FIELDS if name in body and body[name] != row[name]
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
            cur = await store_tasks.send_update(conn, tid, changes, now)
            if changes:  # a no-op update records nothing and keeps the ETag
                details = {name: {"before": row[name], "after": changes[name]} for name in changes}
                await self.event(conn, caller, row, "updated", details, now)
        _answer(resp, await store_tasks.one_row(cur))

    async def on_delete(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str
    ) -> None:
        tid = parse_id(task_id, "task_id")
        async with self.deps.writing(req) as (conn, caller):
            row = await self.locked(conn, req, caller, tid)
            _check_may_modify(row, caller)
            now = self.settings.clock()
            ids = await store_tasks.subtree_ids(conn, tid)
            # Occurrences of a deleted series original stay, under the oldest of them.
            moved = await store_tasks.reroot_series(conn, ids, now)
            try:
                deleted = await store_tasks.delete_tasks(conn, ids)
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
        parent_project_id=await store_tasks.parent_project(conn, new_parent_id),
        project_id=row["project_id"],
        parent_id=new_parent_id,
    )
    if problem is not None:
        raise problem
    wf.check_reparent(
        task_id=row["id"],
        new_parent_id=new_parent_id,
        ancestors_of_new_parent=await store_tasks.ancestors(conn, new_parent_id),
    )


class _ChangeResource(_TaskResource):
    """A write on one task: lock, check, change, one event, answer the task."""

    schema: Any = None

    async def apply(
        self, conn: Conn, caller: Caller, row: Row, body: dict[str, Any], now: datetime
    ) -> tuple[dict[str, Any], str, dict[str, Any]]:
        raise NotImplementedError

    async def change(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str
    ) -> None:
        tid = parse_id(task_id, "task_id")
        body = await load_body(req, self.schema) if self.schema is not None else {}
        if req.method == "POST" and req.get_header(IDEMPOTENCY_HEADER) is not None:
            await self.change_idempotently(req, resp, tid, body)
            return
        async with _autocommit(self.pool) as conn:
            caller = await self.caller(req, conn)
            now = self.settings.clock()
            answer = await self.change_guarded(conn, req, caller, tid, body, now)
            if answer is None:
                answer = await self.change_if_unchanged(conn, req, caller, tid, body, now)
            if answer is None:
                answer = await self.change_locked(conn, req, caller, tid, body, now)
        _answer(resp, answer)

    def guarded(self, body: dict[str, Any]) -> Guarded | None:
        """The change as one statement whose guard holds exactly where ``apply`` would write
        it without raising and ``writes_more`` is false (see ``store_tasks.GuardedChange``),
        with its event's action and details (``before`` is filled in by the statement);
        ``None`` when the change needs the row in Python."""
        return None

    def writes_more(self, row: Row, body: dict[str, Any]) -> bool:
        """Whether the change writes more than the task itself (a recurring task's next
        occurrence): it then runs in a transaction of several statements."""
        return False

    async def change_guarded(
        self,
        conn: Conn,
        req: falcon.asgi.Request,
        caller: Caller,
        tid: int,
        body: dict[str, Any],
        now: datetime,
    ) -> Row | None:
        """The common case in one round trip: the database applies the change, and its event,
        if the rules allow it. ``None`` when nothing was written: an error to explain, a
        change the rules must see in Python, or an ``If-Match`` to check."""
        if req.get_header("If-Match") is not None or (guarded := self.guarded(body)) is None:
            return None
        change, action, details = guarded
        event = _task_event(caller, {"project_id": None, "id": tid}, action, details, now)
        return await store_tasks.update_guarded(
            conn, tid, change, now, event, tenant_id=caller.tenant_id, worker_id=caller.worker_id
        )

    async def change_if_unchanged(
        self,
        conn: Conn,
        req: falcon.asgi.Request,
        caller: Caller,
        tid: int,
        body: dict[str, Any],
        now: datetime,
    ) -> Row | None:
        """The common case in two round trips, no explicit transaction: read the task, run the
        rules, then one statement changes it and writes its event only if nobody changed it
        in between. ``None`` when somebody did, or when the change writes more."""
        row = _writable(
            req,
            await store_tasks.read_for_change(
                conn, tid, tenant_id=caller.tenant_id, worker_id=caller.worker_id
            ),
        )
        if self.writes_more(row, body):
            return None
        changes, action, details = await self.apply(conn, caller, row, body, now)
        return await store_tasks.update_if_unchanged(
            conn,
            tid,
            row["row_version"],
            _changed(row, changes),
            now,
            _task_event(caller, row, action, details, now),
        )

    async def change_locked(
        self,
        conn: Conn,
        req: falcon.asgi.Request,
        caller: Caller,
        tid: int,
        body: dict[str, Any],
        now: datetime,
    ) -> Row:
        """The change in a transaction under the task's row lock: BEGIN with the locking
        read, the UPDATE and its event with COMMIT (two round trips plus what ``apply``
        writes)."""
        row = _writable(
            req,
            await store_tasks.begin_and_lock(
                conn, tid, tenant_id=caller.tenant_id, worker_id=caller.worker_id
            ),
        )
        changes, action, details = await self.apply(conn, caller, row, body, now)
        event = _task_event(caller, row, action, details, now)
        cur = await store_tasks.update_and_commit(conn, tid, _changed(row, changes), now, event)
        return await store_tasks.one_row(cur)

    async def change_idempotently(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, tid: int, body: dict[str, Any]
    ) -> None:
        async def change(conn: Conn, caller: Caller, now: datetime) -> None:
            row = await self.locked(conn, req, caller, tid)
            changes, action, details = await self.apply(conn, caller, row, body, now)
            await self.event(conn, caller, row, action, details, now)
            _answer(resp, await store_tasks.update_task(conn, tid, changes, now))

        await idempotent_post(self.deps, req, resp, change)


# The statuses each status may be reached from (the transition table read backwards).
_SOURCES = {
    new: [old for old, targets in wf.VALID_TRANSITIONS.items() if new in targets]
    for new in wf.STATUSES
}


class TaskStatusResource(_ChangeResource):
    schema = STATUS_UPDATE

    def guarded(self, body: dict[str, Any]) -> Guarded | None:
        # wf.change_status as SQL: the transition table, started_at stamped on the first move
        # to in_progress, completion stamping completed_at and forcing progress to 100. A
        # recurring task's completion may spawn its next occurrence: that takes the rules.
        new = body["status"]
        sets = "status = %(status)s"
        guard = "x.status = ANY(%(_from)s)"
        if new == "in_progress":
            sets += ", started_at = coalesce(x.started_at, %(_now)s)"
        if new == "completed":
            sets += ", completed_at = %(_now)s, progress_percent = 100"
            guard += " AND NOT x.is_recurring"
        params = {"status": new, "_from": _SOURCES[new]}
        change = store_tasks.GuardedChange(sets, guard, "status", params)
        return change, "status_changed", {"before": None, "after": new}

    def writes_more(self, row: Row, body: dict[str, Any]) -> bool:
        return body["status"] == "completed" and _spawns_next(row)

    async def apply(
        self, conn: Conn, caller: Caller, row: Row, body: dict[str, Any], now: datetime
    ) -> tuple[dict[str, Any], str, dict[str, Any]]:
        _check_may_modify(row, caller)
        change = wf.change_status(
            current=row["status"],
            new=body["status"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
            progress_percent=row["progress_percent"],
            now=now,
        )
        if change.completes:
            await self.complete_recurring(conn, caller, row, now)
        return (
            _status_columns(change),
            "status_changed",
            {
                "before": row["status"],
                "after": change.status,
            },
        )

    async def on_patch(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str
    ) -> None:
        await self.change(req, resp, task_id)


def _status_columns(change: wf.StatusChange) -> dict[str, Any]:
    return {
        "status": change.status,
        "started_at": change.started_at,
        "completed_at": change.completed_at,
        "progress_percent": change.progress_percent,
    }


class TaskProgressResource(_ChangeResource):
    schema = PROGRESS_UPDATE

    def guarded(self, body: dict[str, Any]) -> Guarded | None:
        # wf.check_progress_allowed as SQL.
        change = store_tasks.GuardedChange(
            "progress_percent = %(percent)s",
            "x.status = 'in_progress'",
            "progress_percent",
            {"percent": body["percent"]},
        )
        details = {"before": None, "after": body["percent"], "note": body["note"]}
        return change, "progress_updated", details

    async def apply(
        self, conn: Conn, caller: Caller, row: Row, body: dict[str, Any], now: datetime
    ) -> tuple[dict[str, Any], str, dict[str, Any]]:
        _check_may_modify(row, caller)
        wf.check_progress_allowed(row["status"])
        return (
            {"progress_percent": body["percent"]},
            "progress_updated",
            {
                "before": row["progress_percent"],
                "after": body["percent"],
                "note": body["note"],
            },
        )

    async def on_patch(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str
    ) -> None:
        await self.change(req, resp, task_id)


class TaskAssignResource(_ChangeResource):
    schema = ASSIGN_UPDATE

    async def apply(
        self, conn: Conn, caller: Caller, row: Row, body: dict[str, Any], now: datetime
    ) -> tuple[dict[str, Any], str, dict[str, Any]]:
        _check_may_modify(row, caller)
        assignee = body["assignee_id"]
        handle = None
        if assignee is not None:
            handle = await store_tasks.member_handle(conn, row["project_id"], assignee)
            if handle is None:
                raise BadRequest(f"Worker {assignee} is not a member of this project")
        return (
            {"assignee_id": assignee},
            "assigned",
            {
                "before": row["assignee_id"],
                "after": assignee,
                "assignee_handle": handle,
            },
        )

    async def on_patch(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str
    ) -> None:
        await self.change(req, resp, task_id)


class ApproveResource(_ChangeResource):
    def writes_more(self, row: Row, body: dict[str, Any]) -> bool:
        return _spawns_next(row)

    async def apply(
        self, conn: Conn, caller: Caller, row: Row, body: dict[str, Any], now: datetime
    ) -> tuple[dict[str, Any], str, dict[str, Any]]:
        _check_may_review(row, caller)
        change = wf.approve(current=row["status"], started_at=row["started_at"], now=now)
        await self.complete_recurring(conn, caller, row, now)
        return (
            _status_columns(change),
            "approved",
            {
                "from_status": "review",
                "to_status": "completed",
            },
        )

    async def on_post(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str
    ) -> None:
        await self.change(req, resp, task_id)


class RejectResource(_ChangeResource):
    schema = REJECT

    async def apply(
        self, conn: Conn, caller: Caller, row: Row, body: dict[str, Any], now: datetime
    ) -> tuple[dict[str, Any], str, dict[str, Any]]:
        _check_may_review(row, caller)
        change = wf.reject(
            current=row["status"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
            progress=row["progress_percent"],
        )
        return (
            _status_columns(change),
            "rejected",
            {
                "reason": body["reason"],
                "from_status": "review",
                "to_status": "in_progress",
            },
        )

    async def on_post(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str
    ) -> None:
        await self.change(req, resp, task_id)


class SubtasksResource(_TaskResource):
    async def on_post(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str
    ) -> None:
        tid = parse_id(task_id, "task_id")
        body = await load_body(req, TASK_CREATE)
        # The parent is the task in the path; a body's parent_task_id is ignored, as the
        # reference did (the body is a TaskCreate, shared with the project-level create).
        body["parent_task_id"] = tid

        async def create(conn: Conn, caller: Caller, now: datetime) -> None:
            parent = await store_tasks.lock_for_change(
                conn, tid, tenant_id=caller.tenant_id, worker_id=caller.worker_id
            )
            if parent is None:
                raise NotFound("Parent task not found")
            if parent["caller_role"] is None:
                raise Forbidden(NOT_A_MEMBER)
            assignee = body["assignee_id"]
            if (
                assignee is not None
                and await store_tasks.member_handle(conn, parent["project_id"], assignee) is None
            ):
                raise BadRequest(f"Worker {assignee} is not a member of this project")
            values = _new_task(body, parent["project_id"], caller, now, parent=tid)
            row = await store_tasks.insert_task(conn, values)
            details = _created_details(row, is_subtask=True)
            await self.event(conn, caller, row, "created", details, now)
            _created(resp, row)

        await idempotent_post(self.deps, req, resp, create)


# --- route table -----------------------------------------------------------------------------

_IF_MATCH = ("If-Match",)
_IDEMPOTENCY = ("Idempotency-Key",)
_CHANGE_ERRORS = (400, 403, 404, 412)


def _op(method: str, summary: str, **kwargs: Any) -> Operation:
    return Operation(method, summary, TAG, **kwargs)


def task_routes(deps: TasksDeps) -> list[Route]:
    """Every task endpoint, documented for OpenAPI."""
    return [
        Route(
            "/api/tasks/recent",
            RecentTasksResource(deps),
            (
                _op(
                    "GET",
                    "Recent tasks",
                    response=TaskListItemSchema,
                    many=True,
                    query=RecentQuerySchema,
                    example=EXAMPLE_LIST_ITEM,
                    description="Newest tasks (subtasks included) of every project of the "
                    "caller in their tenant; newest first, id as tiebreaker.",
                ),
            ),
        ),
        Route(
            "/api/projects/{project_id}/tasks",
            ProjectTasksResource(deps),
            (
                _op(
                    "GET",
                    "List project tasks",
                    response=TaskListItemSchema,
                    many=True,
                    query=TaskListQuerySchema,
                    errors=(403, 404),
                    example=EXAMPLE_LIST_ITEM,
                    description="Filters are ANDed. Every sort ends with id, so paging is "
                    "stable. search matches the title case-insensitively with % and _ taken "
                    "literally; tags=a,b needs every tag.",
                ),
                _op(
                    "POST",
                    "Create a task",
                    response=TaskReadSchema,
                    status=201,
                    request=TaskCreateSchema,
                    errors=(400, 403, 404, 409),
                    example=EXAMPLE_TASK,
                    headers=_IDEMPOTENCY,
                    description=wf.MAX_OCCURRENCES_MEANING,
                ),
            ),
        ),
        Route(
            "/api/tasks/{task_id}",
            TaskResource(deps),
            (
                _op(
                    "GET",
                    "Get a task",
                    response=TaskReadSchema,
                    errors=(403, 404),
                    example=EXAMPLE_TASK,
                    description="With its direct subtasks (by id) and an ETag.",
                ),
                _op(
                    "PUT",
                    "Update a task",
                    response=TaskReadSchema,
                    request=TaskUpdateSchema,
                    errors=_CHANGE_ERRORS,
                    example=EXAMPLE_TASK,
                    headers=_IF_MATCH,
                    description="Absent fields are unchanged; null clears description, "
                    "due_date, recurrence_pattern, max_occurrences and parent_task_id. "
                    "parent_task_id re-parents within the project (cycles: 400 'Circular "
                    "reference detected'). " + wf.MAX_OCCURRENCES_MEANING,
                ),
                _op(
                    "DELETE",
                    "Delete a task",
                    response=OkSchema,
                    errors=(403, 404, 409, 412),
                    example={"ok": True},
                    headers=_IF_MATCH,
                    description="Deletes the task and all its subtasks (one audit event each). "
                    "Deleting the original of a recurring series keeps its occurrences: the "
                    "oldest remaining one becomes the series' original.",
                ),
            ),
        ),
        Route(
            "/api/tasks/{task_id}/status",
            TaskStatusResource(deps),
            (
                _op(
                    "PATCH",
                    "Change a task's status",
                    response=TaskReadSchema,
                    request=StatusUpdateSchema,
                    errors=_CHANGE_ERRORS,
                    example=EXAMPLE_TASK,
                    headers=_IF_MATCH,
                    description="Transitions: pending→in_progress|blocked|completed; "
                    "in_progress→review|completed|blocked; review→in_progress|completed; "
                    "completed→review; blocked→pending|in_progress.",
                ),
            ),
        ),
        Route(
            "/api/tasks/{task_id}/progress",
            TaskProgressResource(deps),
            (
                _op(
                    "PATCH",
                    "Report progress",
                    response=TaskReadSchema,
                    request=ProgressUpdateSchema,
                    errors=_CHANGE_ERRORS,
                    example=EXAMPLE_TASK,
                    headers=_IF_MATCH,
                ),
            ),
        ),
        Route(
            "/api/tasks/{task_id}/assign",
            TaskAssignResource(deps),
            (
                _op(
                    "PATCH",
                    "Assign or unassign a task",
                    response=TaskReadSchema,
                    request=AssignUpdateSchema,
                    errors=_CHANGE_ERRORS,
                    example=EXAMPLE_TASK,
                    headers=_IF_MATCH,
                ),
            ),
        ),
        Route(
            "/api/tasks/{task_id}/subtasks",
            SubtasksResource(deps),
            (
                _op(
                    "POST",
                    "Create a subtask",
                    response=TaskReadSchema,
                    status=201,
                    request=TaskCreateSchema,
                    errors=(400, 403, 404),
                    example=EXAMPLE_TASK,
                    headers=_IDEMPOTENCY,
                ),
            ),
        ),
        Route(
            "/api/tasks/{task_id}/approve",
            ApproveResource(deps),
            (
                _op(
                    "POST",
                    "Approve a task in review",
                    response=TaskReadSchema,
                    errors=_CHANGE_ERRORS,
                    example=EXAMPLE_TASK,
                    headers=(*_IDEMPOTENCY, *_IF_MATCH),
                    description="review→completed. The assignee may not approve their own "
                    "task unless they own the project.",
                ),
            ),
        ),
        Route(
            "/api/tasks/{task_id}/reject",
            RejectResource(deps),
            (
                _op(
                    "POST",
                    "Send a task in review back",
                    response=TaskReadSchema,
                    request=RejectSchema,
                    errors=_CHANGE_ERRORS,
                    example=EXAMPLE_TASK,
                    headers=(*_IDEMPOTENCY, *_IF_MATCH),
                ),
            ),
        ),
    ]
