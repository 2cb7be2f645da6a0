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

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from falcon.asgi import Request, Response
from taskflow_core.schemas import load_body, parse_id

from ..callers.caller import Caller
from ..outbox.events import OutboxEvent
from ..writes.idempotency import IDEMPOTENCY_HEADER, idempotent_post
from ..writes.preconditions import IF_MATCH_HEADER
from . import store
from .resource import TaskResource, answer, autocommit, writable

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]


@dataclass(frozen=True)
class Change:
    """One change asked for: by whom, of which task, with which body, at which moment."""

    req: Request
    caller: Caller
    task_id: int
    body: dict[str, Any]
    now: datetime

    def event_of(self, row: Row, applied: Applied | Guarded) -> OutboxEvent:
        """The audit event of ``applied`` on ``row``, by the caller."""
        return self.caller.author.task_event(row, applied.action, applied.details, self.now)


@dataclass(frozen=True)
class Applied:
    """What the rules decided: the columns to write, the event's action and details."""

    columns: dict[str, Any]
    action: str
    details: dict[str, Any]


@dataclass(frozen=True)
class Guarded:
    """The change as one guarded statement, with its event's action and details."""

    statement: store.GuardedChange
    action: str
    details: dict[str, Any]


def _changed(row: Row, columns: dict[str, Any]) -> dict[str, Any]:
    """Only the columns that differ: a smaller statement to bind and run."""
    return {name: value for name, value in columns.items() if row[name] != value}


class TaskChange(TaskResource):
    """A write on one task: lock, check, change, one event, answer the task. A subclass states
    its rules in ``apply`` and answers its method with ``respond``."""

    schema: Any = None

    async def apply(self, conn: Conn, change: Change, row: Row) -> Applied:
        raise NotImplementedError

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

    async def respond(self, req: Request, resp: Response, task_id: str) -> None:
        tid = parse_id(task_id, "task_id")
        body = await load_body(req, self.schema) if self.schema is not None else {}
        if req.method == "POST" and req.get_header(IDEMPOTENCY_HEADER) is not None:
            await self.change_idempotently(req, resp, tid, body)
            return
        async with autocommit(self.pool) as conn:
            change = Change(req, await self.caller(req, conn), tid, body, self.settings.clock())
            row = await self.change_guarded(conn, change)
            if row is None:
                row = await self.change_if_unchanged(conn, change)
            if row is None:
                row = await self.change_locked(conn, change)
        answer(resp, row)

    async def change_guarded(self, conn: Conn, change: Change) -> Row | None:
        """The common case in one round trip: the database applies the change, and its event,
        if the rules allow it. ``None`` when nothing was written: an error to explain, a
        change the rules must see in Python, or an ``If-Match`` to check."""
        guarded = self.guarded(change.body)
        if change.req.get_header(IF_MATCH_HEADER) is not None or guarded is None:
            return None
        event = change.event_of({"project_id": None, "id": change.task_id}, guarded)
        caller = change.caller
        return await store.update_guarded(
            conn,
            change.task_id,
            guarded.statement,
            change.now,
            event,
            tenant_id=caller.tenant_id,
            worker_id=caller.worker_id,
        )

    async def change_if_unchanged(self, conn: Conn, change: Change) -> Row | None:
        """The common case in two round trips, no explicit transaction: read the task, run the
        rules, then one statement changes it and writes its event only if nobody changed it
        in between. ``None`` when somebody did, or when the change writes more."""
        caller = change.caller
        found = await store.read_for_change(
            conn, change.task_id, tenant_id=caller.tenant_id, worker_id=caller.worker_id
        )
        row = writable(change.req, found)
        if self.writes_more(row, change.body):
            return None
        applied = await self.apply(conn, change, row)
        columns = _changed(row, applied.columns)
        event = change.event_of(row, applied)
        return await store.update_if_unchanged(
            conn, change.task_id, row["row_version"], columns, change.now, event
        )

    async def change_locked(self, conn: Conn, change: Change) -> Row:
        """The change in a transaction under the task's row lock: BEGIN with the locking
        read, the UPDATE and its event with COMMIT (two round trips plus what ``apply``
        writes)."""
        caller = change.caller
        found = await store.begin_and_lock(
            conn, change.task_id, tenant_id=caller.tenant_id, worker_id=caller.worker_id
        )
        row = writable(change.req, found)
        applied = await self.apply(conn, change, row)
        columns = _changed(row, applied.columns)
        event = change.event_of(row, applied)
        cur = await store.update_and_commit(conn, change.task_id, columns, change.now, event)
        return await store.one_row(cur)

    async def change_idempotently(
        self, req: Request, resp: Response, tid: int, body: dict[str, Any]
    ) -> None:
        async def write(conn: Conn, caller: Caller, now: datetime) -> None:
            row = await self.locked(conn, req, caller, tid)
            applied = await self.apply(conn, Change(req, caller, tid, body, now), row)
            await self.event(conn, caller, row, applied.action, applied.details, now)
            answer(resp, await store.update_task(conn, tid, applied.columns, now))

        await idempotent_post(self.deps, req, resp, write)
