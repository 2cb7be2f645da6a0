"""The actions on one task: ``PATCH`` its status, progress and assignee, ``POST`` approve and
reject. Each states its rules (``apply``) and, where the database can check them alone, the
same change as one guarded statement (``guarded``); ``changes.TaskChange`` runs them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import falcon.asgi
import psycopg
from taskflow_core.errors import BadRequest

from ..callers.caller import Caller
from . import queries, store
from . import workflow as wf
from .changes import Guarded, TaskChange
from .resource import check_may_modify, check_may_review, spawns_next
from .schemas import ASSIGN_UPDATE, PROGRESS_UPDATE, REJECT, STATUS_UPDATE

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]


# The statuses each status may be reached from (the transition table read backwards).
_SOURCES = {
    new: [old for old, targets in wf.VALID_TRANSITIONS.items() if new in targets]
    for new in wf.STATUSES
}


class TaskStatus(TaskChange):
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
        change = store.GuardedChange(sets, guard, "status", params)
        return change, "status_changed", {"before": None, "after": new}

    def writes_more(self, row: Row, body: dict[str, Any]) -> bool:
        return body["status"] == "completed" and spawns_next(row)

    async def apply(
        self, conn: Conn, caller: Caller, row: Row, body: dict[str, Any], now: datetime
    ) -> tuple[dict[str, Any], str, dict[str, Any]]:
        check_may_modify(row, caller)
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


class TaskProgress(TaskChange):
    schema = PROGRESS_UPDATE

    def guarded(self, body: dict[str, Any]) -> Guarded | None:
        # wf.check_progress_allowed as SQL.
        change = store.GuardedChange(
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
        check_may_modify(row, caller)
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


class TaskAssignment(TaskChange):
    schema = ASSIGN_UPDATE

    async def apply(
        self, conn: Conn, caller: Caller, row: Row, body: dict[str, Any], now: datetime
    ) -> tuple[dict[str, Any], str, dict[str, Any]]:
        check_may_modify(row, caller)
        assignee = body["assignee_id"]
        handle = None
        if assignee is not None:
            handle = await queries.member_handle(conn, row["project_id"], assignee)
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


class TaskApproval(TaskChange):
    def writes_more(self, row: Row, body: dict[str, Any]) -> bool:
        return spawns_next(row)

    async def apply(
        self, conn: Conn, caller: Caller, row: Row, body: dict[str, Any], now: datetime
    ) -> tuple[dict[str, Any], str, dict[str, Any]]:
        check_may_review(row, caller)
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


class TaskRejection(TaskChange):
    schema = REJECT

    async def apply(
        self, conn: Conn, caller: Caller, row: Row, body: dict[str, Any], now: datetime
    ) -> tuple[dict[str, Any], str, dict[str, Any]]:
        check_may_review(row, caller)
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
