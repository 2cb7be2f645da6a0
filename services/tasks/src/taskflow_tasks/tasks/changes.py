"""The path every change of one task takes (status, progress, assignment, review): the fewest
round trips the rules allow, falling back step by step.

1. guarded: one statement applies the change and its event when the database can check the
   rules by itself (``store.GuardedChange``);
2. if unchanged: read the task, run the rules in Python, then one statement writes the change
   and its event only if nobody wrote the task in between;
3. locked: a transaction under the task's row lock (a change that writes more than the task,
   e.g. a completion that spawns the next occurrence);
4. idempotent: a POST with ``Idempotency-Key`` runs as one transaction storing its answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import falcon.asgi
import psycopg
from taskflow_core.schemas import load_body, parse_id

from ..callers.caller import Caller
from ..writes.idempotency import IDEMPOTENCY_HEADER, idempotent_post
from . import store
from .resource import TaskResource, answer, autocommit, writable

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]
# A change as one guarded statement, its event's action and details.
Guarded = tuple[store.GuardedChange, str, dict[str, Any]]


def _changed(row: Row, changes: dict[str, Any]) -> dict[str, Any]:
    """Only the columns that differ: a smaller statement to bind and run."""
    return {name: value for name, value in changes.items() if row[name] != value}


class TaskChange(TaskResource):
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
        async with autocommit(self.pool) as conn:
            caller = await self.caller(req, conn)
            now = self.settings.clock()
            row = await self.change_guarded(conn, req, caller, tid, body, now)
            if row is None:
                row = await self.change_if_unchanged(conn, req, caller, tid, body, now)
            if row is None:
                row = await self.change_locked(conn, req, caller, tid, body, now)
        answer(resp, row)

    def guarded(self, body: dict[str, Any]) -> Guarded | None:
        """The change as one statement whose guard holds exactly where ``apply`` would write
        it without raising and ``writes_more`` is false (see ``store.GuardedChange``),
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
        event = caller.author.task_event({"project_id": None, "id": tid}, action, details, now)
        return await store.update_guarded(
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
        row = writable(
            req,
            await store.read_for_change(
                conn, tid, tenant_id=caller.tenant_id, worker_id=caller.worker_id
            ),
        )
        if self.writes_more(row, body):
            return None
        changes, action, details = await self.apply(conn, caller, row, body, now)
        return await store.update_if_unchanged(
            conn,
            tid,
            row["row_version"],
            _changed(row, changes),
            now,
            caller.author.task_event(row, action, details, now),
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
        row = writable(
            req,
            await store.begin_and_lock(
                conn, tid, tenant_id=caller.tenant_id, worker_id=caller.worker_id
            ),
        )
        changes, action, details = await self.apply(conn, caller, row, body, now)
        event = caller.author.task_event(row, action, details, now)
        cur = await store.update_and_commit(conn, tid, _changed(row, changes), now, event)
        return await store.one_row(cur)

    async def change_idempotently(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, tid: int, body: dict[str, Any]
    ) -> None:
        async def change(conn: Conn, caller: Caller, now: datetime) -> None:
            row = await self.locked(conn, req, caller, tid)
            changes, action, details = await self.apply(conn, caller, row, body, now)
            await self.event(conn, caller, row, action, details, now)
            answer(resp, await store.update_task(conn, tid, changes, now))

        await idempotent_post(self.deps, req, resp, change)
