"""What every task resource shares: a connection (autocommit on the hot paths), the caller, the
checks before a write, the task's ETag and answer, and the audit event of a change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import psycopg
import psycopg_pool
from falcon.asgi import Request, Response
from taskflow_core.errors import Forbidden, NotFound

from ..callers.caller import Caller, identity_of
from ..deps import Resource, TasksDeps, answer_created
from ..outbox.events import record
from ..projects.access import NOT_A_MEMBER
from ..recurrence.rules import should_spawn_on_complete
from ..recurrence.spawning import spawn_next_occurrence
from ..writes.preconditions import check_if_match, etag
from . import store
from . import workflow as wf
from .schemas import task_read

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]

TASK_NOT_FOUND = "Task not found"
TAG = "tasks"


@asynccontextmanager
async def autocommit(pool: psycopg_pool.AsyncConnectionPool) -> AsyncIterator[Conn]:
    """A pooled connection in autocommit, to save round trips on the hot paths: a read or a
    change of one statement is its own transaction (a create with its event, a guarded
    UPDATE with its event), and a change that must lock opens its transaction with BEGIN in
    the same round trip as its first statement and COMMITs in the same round trip as its last
    (``store.begin_and_lock`` / ``update_and_commit``). Whatever is left open on the way out
    (an error) is rolled back."""
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


def task_etag(row: Row) -> str:
    return etag("task", row["id"], row["updated_at"])


def answer(resp: Response, row: Row, *, created: bool = False) -> None:
    """The task as TaskRead, with its ETag; ``created``: a 201 with its Location."""
    if created:
        answer_created(resp, task_read(row), f"/api/tasks/{row['id']}", task_etag(row))
        return
    resp.media = task_read(row)
    resp.set_header("ETag", task_etag(row))


def writable(req: Request, row: Row | None) -> Row:
    """404 outside the tenant, 403 for non-members, 412 when ``If-Match`` is stale."""
    if row is None:
        raise NotFound(TASK_NOT_FOUND)
    if row["caller_role"] is None:
        raise Forbidden(NOT_A_MEMBER)
    check_if_match(req, task_etag(row))
    return row


def check_may_modify(row: Row, caller: Caller) -> None:
    wf.check_may_modify(
        assignee_id=row["assignee_id"],
        caller_worker_id=caller.worker_id,
        is_owner=row["caller_role"] == "owner",
    )


def check_may_review(row: Row, caller: Caller) -> None:
    wf.check_may_review(
        assignee_id=row["assignee_id"],
        caller_worker_id=caller.worker_id,
        is_owner=row["caller_role"] == "owner",
    )


def spawns_next(row: Row) -> bool:
    """Whether completing this task creates its next occurrence."""
    return should_spawn_on_complete(
        is_recurring=row["is_recurring"],
        pattern=row["recurrence_pattern"],
        trigger=row["recurrence_trigger"],
        has_spawned_next=row["has_spawned_next"],
    )


class TaskResource(Resource):
    """The base of every task resource: its dependencies and the steps writes share."""

    def __init__(self, deps: TasksDeps) -> None:
        super().__init__(deps)
        self.pool = deps.pool
        self.settings = deps.settings
        self.provisioner = deps.provisioner

    async def caller(self, req: Request, conn: Conn) -> Caller:
        return await self.provisioner.caller(identity_of(req), conn)

    async def locked(self, conn: Conn, req: Request, caller: Caller, task_id: int) -> Row:
        """The task locked for this write: 404 outside the tenant, 403 for non-members, 412
        when ``If-Match`` names another version."""
        row = await store.lock_for_change(
            conn, task_id, tenant_id=caller.tenant_id, worker_id=caller.worker_id
        )
        return writable(req, row)

    async def event(
        self, conn: Conn, caller: Caller, row: Row, action: str, details: Row, now: datetime
    ) -> None:
        await record(conn, caller.author.task_event(row, action, details, now))

    async def complete_recurring(self, conn: Conn, caller: Caller, row: Row, now: datetime) -> None:
        """Spawn the next occurrence when a recurring task completes (trigger permitting)."""
        if spawns_next(row):
            await spawn_next_occurrence(conn, row, caller.author, now, when_due=False)
