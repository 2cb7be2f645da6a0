"""The actions on one task: ``PATCH`` its status, progress and assignee, ``POST`` approve and
reject. Each states its rules (``apply``) and, where the database can check them alone, the
same change as one guarded statement (``guarded``); ``changes.TaskChange`` runs them."""

from __future__ import annotations

from typing import Any

import psycopg
from taskflow_core.errors import BadRequest

from . import queries, store
from . import workflow as wf
from .changes import Applied, Change, Guarded, TaskChange
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
        statement = store.GuardedChange(sets, guard, "status", params)
        return Guarded(statement, "status_changed", {"before": None, "after": new})

    def writes_more(self, row: Row, body: dict[str, Any]) -> bool:
        return body["status"] == "completed" and spawns_next(row)

    async def apply(self, conn: Conn, change: Change, row: Row) -> Applied:
        check_may_modify(row, change.caller)
        status = wf.change_status(
            current=row["status"],
            new=change.body["status"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
            progress_percent=row["progress_percent"],
            now=change.now,
        )
        if status.completes:
            await self.complete_recurring(conn, change.caller, row, change.now)
        details = {"before": row["status"], "after": status.status}
        return Applied(status.columns(), "status_changed", details)

    on_patch = TaskChange.respond


class TaskProgress(TaskChange):
    schema = PROGRESS_UPDATE

    def guarded(self, body: dict[str, Any]) -> Guarded | None:
        # wf.check_progress_allowed as SQL.
        statement = store.GuardedChange(
            "progress_percent = %(percent)s",
            "x.status = 'in_progress'",
            "progress_percent",
            {"percent": body["percent"]},
        )
        details = {"before": None, "after": body["percent"], "note": body["note"]}
        return Guarded(statement, "progress_updated", details)

    async def apply(self, conn: Conn, change: Change, row: Row) -> Applied:
        check_may_modify(row, change.caller)
        wf.check_progress_allowed(row["status"])
        percent = change.body["percent"]
        details = {"before": row["progress_percent"], "after": percent, "note": change.body["note"]}
        return Applied({"progress_percent": percent}, "progress_updated", details)

    on_patch = TaskChange.respond


class TaskAssignment(TaskChange):
    schema = ASSIGN_UPDATE

    async def apply(self, conn: Conn, change: Change, row: Row) -> Applied:
        check_may_modify(row, change.caller)
        assignee = change.body["assignee_id"]
        handle = None
        if assignee is not None:
            handle = await queries.member_handle(conn, row["project_id"], assignee)
            if handle is None:
                raise BadRequest(f"Worker {assignee} is not a member of this project")
        details = {"before": row["assignee_id"], "after": assignee, "assignee_handle": handle}
        return Applied({"assignee_id": assignee}, "assigned", details)

    on_patch = TaskChange.respond


class TaskApproval(TaskChange):
    def writes_more(self, row: Row, body: dict[str, Any]) -> bool:
        return spawns_next(row)

    async def apply(self, conn: Conn, change: Change, row: Row) -> Applied:
        check_may_review(row, change.caller)
        status = wf.approve(current=row["status"], started_at=row["started_at"], now=change.now)
        await self.complete_recurring(conn, change.caller, row, change.now)
        details = {"from_status": "review", "to_status": "completed"}
        return Applied(status.columns(), "approved", details)

    on_post = TaskChange.respond


class TaskRejection(TaskChange):
    schema = REJECT

    async def apply(self, conn: Conn, change: Change, row: Row) -> Applied:
        check_may_review(row, change.caller)
        status = wf.reject(
            current=row["status"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
            progress=row["progress_percent"],
        )
        details = {
            "reason": change.body["reason"],
            "from_status": "review",
            "to_status": "in_progress",
        }
        return Applied(status.columns(), "rejected", details)

    on_post = TaskChange.respond
