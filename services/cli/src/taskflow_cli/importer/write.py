"""Applying a plan to PostgreSQL: a read-only preflight, then chunks that each commit on their own.

Each chunk's transaction writes its rows, their outbox events and their ledger rows together
(``tasks.import_ledger``, migration 0009), under a transaction-scoped advisory lock of this
import (PgBouncer-safe), after re-reading which of its keys are already recorded. So a run
killed at any point leaves whole chunks behind, the next run skips them, and two runs of the
same import at once do not both write a row. Rows and events are written with the tasks
service's own functions (its provisioning and worker, project, member and task stores, its
outbox events), so an imported row is written exactly as the service writes one.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row
from taskflow_tasks.members import store as members
from taskflow_tasks.outbox.events import Author, record, record_all
from taskflow_tasks.projects import store as projects
from taskflow_tasks.tasks import inserts as tasks
from taskflow_tasks.workers import store as workers

from . import ledger, planned
from .history import history_event
from .outcome import Outcome, Progress, RunContext
from .planned import OWNER_KEY, Plan, event_id
from .source import Problem
from .workers import ensure_owner, ensure_worker, handle_notes, import_author, worker_created

Conn = psycopg.AsyncConnection[Any]
Ids = dict[str, int]

WORKER_CHUNK = 200
PROJECT_CHUNK = 100
TASK_CHUNK = 500
EVENT_CHUNK = 1000
# Test hook: SIGKILL this process after N committed chunks (what a killed run looks like).
KILL_AFTER_ENV = "TASKFLOW_IMPORT_KILL_AFTER_CHUNKS"


async def connect(conninfo: str) -> Conn:
    return await psycopg.AsyncConnection.connect(
        conninfo,
        autocommit=True,
        row_factory=dict_row,
        prepare_threshold=None,
        application_name="taskflow-import-cli",
    )


class ImportConflict(RuntimeError):
    """The database changed under the import in a way it cannot resolve on its own."""


class Importer:
    def __init__(self, conn: Conn, plan: Plan, ctx: RunContext, progress: Progress) -> None:
        self.conn = conn
        self.plan = plan
        self.ctx = ctx
        self.progress = progress
        self.tenant = ctx.options.tenant_id
        self.fingerprint = ctx.options.fingerprint
        self.ids: Ids = {}
        self.recorded: set[str] = set()
        self.handles: dict[str, str] = {}  # worker key -> handle in the database
        self.types: dict[str, str] = {}  # worker key -> type in the database
        self.outcome = Outcome()
        self.owner: dict[str, Any] | None = None
        self.chunks_committed = 0
        kill_after = os.environ.get(KILL_AFTER_ENV)
        self.kill_after = int(kill_after) if kill_after else None
        self.now = ctx.settings.clock()

    # -- preflight (read only) -----------------------------------------------------------------
    async def preflight(self) -> Outcome:
        """Load the ledger, resolve the owner, and find what cannot be written (or is there)."""
        async with self.conn.transaction():
            conn = self.conn
            if not await ledger.exists(conn):
                self.outcome.problems.append(
                    Problem(
                        "database", "the import tables are missing: run `taskflow migrate` first"
                    )
                )
                return self.outcome
            # A run writing this file now commits its chunks under the same lock: holding it
            # here, what is recorded and which projects are live are read from one state (two
            # runs at once: the second saw a project live but not yet recorded).
            await ledger.lock(conn, self.tenant, self.fingerprint)
            self._remember(await ledger.recorded(conn, self.tenant, self.fingerprint))
            self.outcome.previously_completed = await ledger.completed_at(
                conn, self.tenant, self.fingerprint
            )
            self.owner = await workers.find_human_by_user_id(conn, self.ctx.owner_sub)
            if OWNER_KEY in self.ids:
                self.owner = await workers.get_worker(conn, self.ids[OWNER_KEY])
            self.outcome.notes += await handle_notes(conn, self.plan, self.recorded, self.tenant)
            await self._check_projects(conn)
        self._count_planned()
        return self.outcome

    def _remember(self, rows: list[dict[str, Any]]) -> None:
        """Take in ledger rows: their keys are recorded, their ids known."""
        for row in rows:
            if row["entity_id"] is not None:
                self.ids[row["entity_key"]] = int(row["entity_id"])
            self.recorded.add(row["entity_key"])

    async def _check_projects(self, conn: Conn) -> None:
        """Slugs already live in the tenant: the import never merges into an existing project
        (its tasks would be imported twice when it came from another version of the file)."""
        pending = [p.slug for p in self.plan.projects if p.key not in self.recorded]
        for row in await ledger.live_projects(conn, self.tenant, pending):
            if row["imported_at"] is not None:
                origin = (
                    "was created by an import of a different version of data.json on "
                    f"{row['imported_at']:%Y-%m-%d %H:%M} UTC"
                )
            else:
                origin = "was not created by an import of this file"
            self.outcome.problems.append(
                Problem(
                    f"project {row['slug']}",
                    f"a project with this slug already exists in tenant {self.tenant} and "
                    f"{origin}; the import does not merge into existing projects: rename it in "
                    "the CLI or import into another tenant",
                )
            )
            self.outcome.tallies["projects"].problems += 1

    def _groups(self) -> dict[str, Sequence[Any]]:
        return {
            "workers": self.plan.workers,
            "projects": self.plan.projects,
            "memberships": self.plan.members,
            "tasks": self.plan.tasks,
            "audit entries": self.plan.events,
        }

    def _count_planned(self) -> None:
        for name, items in self._groups().items():
            tally = self.outcome.tallies[name]
            tally.skipped = sum(1 for item in items if item.key in self.recorded)
            tally.created = len(items) - tally.skipped - tally.problems
        # The owner's worker: one more worker, created unless it exists already.
        owner_known = OWNER_KEY in self.recorded or self.owner is not None
        self.outcome.tallies["workers"].skipped += owner_known
        self.outcome.tallies["workers"].created += not owner_known

    # -- writing -------------------------------------------------------------------------------
    async def write(self) -> Outcome:
        """Write every chunk not yet recorded; the tallies become what this run did."""
        todo = 0
        for name, items in self._groups().items():
            tally = self.outcome.tallies[name]
            tally.created = 0
            tally.skipped = sum(1 for item in items if item.key in self.recorded)
            todo += len(items) - tally.skipped
        self.outcome.tallies["workers"].skipped += OWNER_KEY in self.recorded
        self.progress.start(todo)
        async with self.conn.transaction():
            await ledger.start_run(
                self.conn,
                self.tenant,
                self.fingerprint,
                source_path=self.ctx.source_path,
                owner_sub=self.ctx.owner_sub,
                local_time=self.ctx.local_time,
                now=self.now,
            )
        await self._chunked(
            "workers", self.plan.workers, WORKER_CHUNK, self._write_workers, always=True
        )
        await self._load_workers()
        await self._chunked("projects", self.plan.projects, PROJECT_CHUNK, self._write_projects)
        await self._chunked("memberships", self.plan.members, PROJECT_CHUNK, self._write_members)
        await self._chunked("tasks", self.plan.tasks, TASK_CHUNK, self._write_tasks)
        await self._chunked("audit entries", self.plan.events, EVENT_CHUNK, self._write_events)
        async with self.conn.transaction():
            await ledger.finish_run(
                self.conn, self.tenant, self.fingerprint, self.ctx.settings.clock()
            )
        self.progress.finish()
        return self.outcome

    async def _chunked(
        self,
        category: str,
        items: Sequence[Any],
        size: int,
        writer: Callable[[Conn, list[Any]], Any],
        *,
        always: bool = False,
    ) -> None:
        pending = [item for item in items if item.key not in self.recorded]
        if not pending and not (always and OWNER_KEY not in self.recorded):
            return
        for start in range(0, max(len(pending), 1), size):
            chunk = pending[start : start + size]
            async with self.conn.transaction():
                await ledger.lock(self.conn, self.tenant, self.fingerprint)
                done = await self._recorded_now(self.conn, [item.key for item in chunk])
                fresh = [item for item in chunk if item.key not in done]
                self.outcome.tallies[category].skipped += len(chunk) - len(fresh)
                ids = await writer(self.conn, fresh)
            # Only after the commit: a rolled-back chunk must leave no ids behind.
            self.ids.update(ids)
            self.recorded.update(item.key for item in chunk)
            self.progress.advance(category, len(chunk))
            self.chunks_committed += 1
            if self.kill_after is not None and self.chunks_committed >= self.kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

    async def _recorded_now(self, conn: Conn, keys: list[str]) -> set[str]:
        rows = await ledger.recorded(conn, self.tenant, self.fingerprint, keys)
        for row in rows:
            if row["entity_id"] is not None:
                self.ids[row["entity_key"]] = int(row["entity_id"])
        return {row["entity_key"] for row in rows}

    async def _ledger(self, conn: Conn, entries: list[ledger.Entry]) -> None:
        await ledger.record(conn, self.tenant, self.fingerprint, entries, self.now)

    def _author(self) -> Author:
        assert self.owner is not None
        return import_author(self.owner, self.tenant)

    def _tally(self, category: str, created: bool) -> None:
        self.outcome.tallies[category].created += created
        self.outcome.tallies[category].skipped += not created

    # -- workers -------------------------------------------------------------------------------
    async def _write_workers(self, conn: Conn, chunk: list[planned.PlannedWorker]) -> Ids:
        ids: Ids = {}
        entries: list[ledger.Entry] = []
        if OWNER_KEY not in self.recorded and OWNER_KEY not in await self._recorded_now(
            conn, [OWNER_KEY]
        ):
            owner, created = await ensure_owner(conn, self.plan, self.ctx, self.tenant, self.now)
            self.owner = owner
            ids[OWNER_KEY] = owner["id"]
            entries.append((OWNER_KEY, owner["id"], None, created))
            self._tally("workers", created)
        for worker in chunk:
            row, created = await ensure_worker(conn, worker, self.tenant, self.now)
            ids[worker.key] = row["id"]
            ev = None
            if created:
                ev = event_id(self.ctx.options, f"created:{worker.key}")
                details = worker_created(row, worker)
                event = self._author().worker_event(row["id"], "created", details, self.now, ev)
                await record(conn, event)
            entries.append((worker.key, row["id"], ev, created))
            self._tally("workers", created)
        await self._ledger(conn, entries)
        return ids

    async def _load_workers(self) -> None:
        """Handles and types of every mapped worker (audit events name them)."""
        keys = [OWNER_KEY, *(w.key for w in self.plan.workers)]
        by_id = {self.ids[k]: k for k in keys if k in self.ids}
        async with self.conn.transaction():
            rows = await workers.get_workers(self.conn, list(by_id))
        for row in rows:
            key = by_id[row["id"]]
            self.handles[key] = row["handle"]
            self.types[key] = row["type"]
            if key == OWNER_KEY:
                self.owner = row
        self.outcome.owner_handle = self.handles.get(OWNER_KEY)

    # -- projects and memberships ----------------------------------------------------------------
    async def _write_projects(self, conn: Conn, chunk: list[planned.PlannedProject]) -> Ids:
        ids: Ids = {}
        entries: list[ledger.Entry] = []
        assert self.owner is not None
        for project in chunk:
            owner = (self.ctx.owner_sub, self.owner["id"])
            new = projects.NewProject(
                self.tenant, project.slug, project.name, project.description, *owner
            )
            row = await projects.insert_project(conn, new, self.now)
            if row is None:
                raise ImportConflict(
                    f"project {project.slug}: the slug was taken in tenant {self.tenant} while "
                    "importing; nothing of this chunk was written"
                )
            ev = event_id(self.ctx.options, f"created:{project.key}")
            details = {
                "slug": project.slug,
                "name": project.name,
                "tenant_id": self.tenant,
                "imported_from": "cli",
            }
            await record(
                conn, self._author().project_event(row["id"], "created", details, self.now, ev)
            )
            ids[project.key] = row["id"]
            entries.append((project.key, row["id"], ev, True))
        self.outcome.tallies["projects"].created += len(chunk)
        await self._ledger(conn, entries)
        return ids

    async def _write_members(self, conn: Conn, chunk: list[planned.PlannedMember]) -> Ids:
        ids: Ids = {}
        entries: list[ledger.Entry] = []
        for member in chunk:
            project_id = self.ids[member.project_key]
            worker_id = self.ids[member.worker_key]
            row = await members.add_member(conn, project_id, worker_id, "member", self.now)
            ev = None
            if row is not None:
                ev = event_id(self.ctx.options, f"created:{member.key}")
                details = {
                    "worker_id": worker_id,
                    "handle": row["handle"],
                    "type": row["type"],
                    "imported_from": "cli",
                }
                event = self._author().project_event(
                    project_id, "member_added", details, self.now, ev
                )
                await record(conn, event)
                ids[member.key] = row["id"]
            entries.append((member.key, row["id"] if row else None, ev, row is not None))
            self._tally("memberships", row is not None)
        await self._ledger(conn, entries)
        return ids

    # -- tasks ---------------------------------------------------------------------------------
    async def _write_tasks(self, conn: Conn, chunk: list[planned.PlannedTask]) -> Ids:
        if not chunk:
            return {}
        # Ids drawn up front so a subtask in the same chunk can name its parent.
        new_ids = await tasks.next_ids(conn, len(chunk))
        ids = {task.key: new_id for task, new_id in zip(chunk, new_ids, strict=True)}
        known = {**self.ids, **ids}
        rows = [
            {
                "id": ids[task.key],
                "project_id": known[task.project_key],
                "title": task.title,
                "description": task.description,
                "status": task.status,
                "priority": task.priority,
                "progress_percent": task.progress_percent,
                "tags": task.tags,
                "due_date": task.due_date,
                "is_recurring": task.is_recurring,
                "recurrence_pattern": task.recurrence_pattern,
                "assignee_id": known[task.assignee_key] if task.assignee_key else None,
                "parent_task_id": known[task.parent_key] if task.parent_key else None,
                "created_by_id": known[task.creator_key],
                "started_at": task.started_at,
                "completed_at": task.completed_at,
                "created_at": task.created_at,
                "updated_at": task.updated_at,
            }
            for task in chunk
        ]
        await tasks.insert_many(conn, rows)
        await self._ledger(conn, [(t.key, ids[t.key], None, True) for t in chunk])
        self.outcome.tallies["tasks"].created += len(chunk)
        return ids

    # -- audit ---------------------------------------------------------------------------------
    async def _write_events(self, conn: Conn, chunk: list[planned.PlannedEvent]) -> Ids:
        # One round trip per chunk instead of one per event: 50,000 history entries in
        # seconds, not minutes.
        events = [
            history_event(event, self.tenant, self.ids, self.handles, self.types) for event in chunk
        ]
        await record_all(conn, events)
        await self._ledger(conn, [(e.key, None, e.event_id, True) for e in chunk])
        self.outcome.tallies["audit entries"].created += len(chunk)
        return {}
