"""Applying a plan to PostgreSQL: a read-only preflight, then chunks that each commit on their own.

Each chunk's transaction writes its rows, their outbox events and their ledger rows together
(``tasks.import_ledger``, migration 0009), under a transaction-scoped advisory lock of this
import (PgBouncer-safe), after re-reading which of its keys are already recorded. So a run
killed at any point leaves whole chunks behind, the next run skips them, and two runs of the
same import at once do not both write a row. Rows are written with B1's store functions where
one fits (workers, projects, memberships) and with ``outbox.record_event`` for every event.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import psycopg
from psycopg.rows import dict_row
from taskflow_core.config import Settings
from taskflow_tasks.callers import naming
from taskflow_tasks.callers.provisioning import create_placeholder_human
from taskflow_tasks.members import store as store_members
from taskflow_tasks.outbox.events import Actor, ActorType, record_event
from taskflow_tasks.projects import store as store_projects
from taskflow_tasks.workers import store as store_workers

from .plan import (
    OWNER_KEY,
    ImportOptions,
    Plan,
    PlannedEvent,
    PlannedMember,
    PlannedProject,
    PlannedTask,
    PlannedWorker,
    event_id,
)
from .source import Problem

Conn = psycopg.AsyncConnection[Any]

# A human imported without a known SSO subject gets this user_id: the workers table requires
# one for humans, and the prefix marks the worker as claimable by a later SSO login.
UNCLAIMED_PREFIX = "cli-import:"
CATEGORIES = ("workers", "projects", "memberships", "tasks", "audit entries")
WORKER_CHUNK = 200
PROJECT_CHUNK = 100
TASK_CHUNK = 500
EVENT_CHUNK = 1000
# Test hook: SIGKILL this process after N committed chunks (what a killed run looks like).
KILL_AFTER_ENV = "TASKFLOW_IMPORT_KILL_AFTER_CHUNKS"
IMPORT_CLIENT = ("taskflow-import-cli", "taskflow import-cli")
_MAX_HANDLE_ATTEMPTS = 20


@dataclass
class Tally:
    created: int = 0
    skipped: int = 0
    problems: int = 0


@dataclass
class Outcome:
    tallies: dict[str, Tally] = field(default_factory=lambda: {c: Tally() for c in CATEGORIES})
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    owner_handle: str | None = None
    previously_completed: datetime | None = None

    @property
    def created_total(self) -> int:
        return sum(t.created for t in self.tallies.values())


@dataclass(frozen=True)
class RunContext:
    options: ImportOptions
    owner_sub: str
    source_path: str
    local_time: str
    settings: Settings


class Progress:
    """What the writer reports progress to (the report module draws it)."""

    def start(self, total: int) -> None: ...

    def advance(self, stage: str, done: int) -> None: ...

    def finish(self) -> None: ...


@asynccontextmanager
async def _transaction(conn: Conn) -> AsyncIterator[Conn]:
    async with conn.transaction():
        await conn.execute("SET LOCAL search_path TO tasks, public")
        yield conn


async def connect(conninfo: str) -> Conn:
    return await psycopg.AsyncConnection.connect(
        conninfo,
        autocommit=True,
        row_factory=dict_row,
        prepare_threshold=None,
        application_name="taskflow-import-cli",
    )


class Importer:
    def __init__(self, conn: Conn, plan: Plan, ctx: RunContext, progress: Progress) -> None:
        self.conn = conn
        self.plan = plan
        self.ctx = ctx
        self.progress = progress
        self.tenant = ctx.options.tenant_id
        self.fingerprint = ctx.options.fingerprint
        self.ids: dict[str, int] = {}
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
        async with _transaction(self.conn) as conn:
            if not await _ledger_exists(conn):
                self.outcome.problems.append(
                    Problem(
                        "database", "the import tables are missing: run `taskflow migrate` first"
                    )
                )
                return self.outcome
            cur = await conn.execute(
                "SELECT entity_key, entity_id FROM import_ledger"
                " WHERE tenant_id = %s AND source_fingerprint = %s",
                (self.tenant, self.fingerprint),
            )
            for row in await cur.fetchall():
                self.recorded.add(row["entity_key"])
                if row["entity_id"] is not None:
                    self.ids[row["entity_key"]] = int(row["entity_id"])
            run = await (
                await conn.execute(
                    "SELECT completed_at FROM import_runs WHERE tenant_id = %s"
                    " AND source_fingerprint = %s",
                    (self.tenant, self.fingerprint),
                )
            ).fetchone()
            self.outcome.previously_completed = run["completed_at"] if run else None
            self.owner = await store_workers.find_human_by_user_id(conn, self.ctx.owner_sub)
            if OWNER_KEY in self.ids:
                self.owner = await store_workers.get_worker(conn, self.ids[OWNER_KEY])
            await self._check_workers(conn)
            await self._check_projects(conn)
        self._count_planned()
        return self.outcome

    async def _check_workers(self, conn: Conn) -> None:
        handles = [w.handle for w in self.plan.workers]
        cur = await conn.execute(
            "SELECT id, handle, type, tenant_id, user_id FROM workers WHERE handle = ANY(%s)",
            (handles,),
        )
        existing = {row["handle"]: row for row in await cur.fetchall()}
        for worker in self.plan.workers:
            if worker.key in self.recorded:
                continue
            row = existing.get(worker.handle)
            if row is None or worker.user_id is not None or _reusable(row, worker, self.tenant):
                continue
            self.outcome.notes.append(
                f"worker {worker.handle}: the handle belongs to another "
                f"{'tenant' if row['tenant_id'] != self.tenant else row['type']}'s worker; "
                "imported under the first free variant of it"
            )

    async def _check_projects(self, conn: Conn) -> None:
        """Slugs already live in the tenant: the import never merges into an existing project
        (its tasks would be imported twice when it came from another version of the file)."""
        pending = [p for p in self.plan.projects if p.key not in self.recorded]
        cur = await conn.execute(
            """
            SELECT p.slug, min(l.recorded_at) AS imported_at
            FROM projects p
            LEFT JOIN import_ledger l
              ON l.tenant_id = p.tenant_id AND l.entity_key = 'project:' || p.slug
             AND l.entity_id = p.id AND l.created
            WHERE p.tenant_id = %s AND p.deleted_at IS NULL AND p.slug = ANY(%s)
            GROUP BY p.slug ORDER BY p.slug
            """,
            (self.tenant, [p.slug for p in pending]),
        )
        for row in await cur.fetchall():
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
        for name, items in self._groups().items():
            tally = self.outcome.tallies[name]
            tally.created = 0
            tally.skipped = sum(1 for item in items if item.key in self.recorded)
        self.outcome.tallies["workers"].skipped += OWNER_KEY in self.recorded
        todo = (
            sum(1 for w in self.plan.workers if w.key not in self.recorded)
            + sum(1 for p in self.plan.projects if p.key not in self.recorded)
            + sum(1 for m in self.plan.members if m.key not in self.recorded)
            + sum(1 for t in self.plan.tasks if t.key not in self.recorded)
            + sum(1 for e in self.plan.events if e.key not in self.recorded)
        )
        self.progress.start(todo)
        await self._start_run()
        await self._chunked(
            "workers", self.plan.workers, WORKER_CHUNK, self._write_workers, always=True
        )
        await self._load_workers()
        await self._chunked("projects", self.plan.projects, PROJECT_CHUNK, self._write_projects)
        await self._chunked("memberships", self.plan.members, PROJECT_CHUNK, self._write_members)
        await self._chunked("tasks", self.plan.tasks, TASK_CHUNK, self._write_tasks)
        await self._chunked("audit entries", self.plan.events, EVENT_CHUNK, self._write_events)
        await self._finish_run()
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
            async with _transaction(self.conn) as conn:
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    (f"taskflow:import:{self.tenant}:{self.fingerprint}",),
                )
                done = await self._recorded_now(conn, [item.key for item in chunk])
                fresh = [item for item in chunk if item.key not in done]
                self.outcome.tallies[category].skipped += len(chunk) - len(fresh)
                ids = await writer(conn, fresh)
            # Only after the commit: a rolled-back chunk must leave no ids behind.
            self.ids.update(ids)
            self.recorded.update(item.key for item in chunk)
            self.progress.advance(category, len(chunk))
            self.chunks_committed += 1
            if self.kill_after is not None and self.chunks_committed >= self.kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

    async def _recorded_now(self, conn: Conn, keys: list[str]) -> set[str]:
        cur = await conn.execute(
            "SELECT entity_key, entity_id FROM import_ledger WHERE tenant_id = %s"
            " AND source_fingerprint = %s AND entity_key = ANY(%s)",
            (self.tenant, self.fingerprint, keys),
        )
        rows = await cur.fetchall()
        for row in rows:
            if row["entity_id"] is not None:
                self.ids[row["entity_key"]] = int(row["entity_id"])
        return {row["entity_key"] for row in rows}

    async def _ledger(
        self, conn: Conn, rows: list[tuple[str, int | None, uuid.UUID | None, bool]]
    ) -> None:
        if not rows:
            return
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO import_ledger (tenant_id, source_fingerprint, entity_key, entity_id,"
                " event_id, created, recorded_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                [
                    (self.tenant, self.fingerprint, key, entity_id, ev, created, self.now)
                    for key, entity_id, ev, created in rows
                ],
            )

    def _import_actor(self) -> Actor:
        assert self.owner is not None
        return Actor(self.owner["id"], self.owner["handle"], "human", *IMPORT_CLIENT)

    # -- workers -------------------------------------------------------------------------------
    async def _write_workers(self, conn: Conn, workers: list[PlannedWorker]) -> dict[str, int]:
        ids: dict[str, int] = {}
        ledger: list[tuple[str, int | None, uuid.UUID | None, bool]] = []
        if OWNER_KEY not in self.recorded and OWNER_KEY not in await self._recorded_now(
            conn, [OWNER_KEY]
        ):
            owner, created = await self._ensure_owner(conn)
            ids[OWNER_KEY] = owner["id"]
            ledger.append((OWNER_KEY, owner["id"], None, created))
            self.outcome.tallies["workers"].created += created
            self.outcome.tallies["workers"].skipped += not created
        for worker in workers:
            row, created = await self._ensure_worker(conn, worker)
            ids[worker.key] = row["id"]
            ev = None
            if created:
                ev = event_id(self.ctx.options, f"created:{worker.key}")
                await record_event(
                    conn,
                    tenant_id=self.tenant,
                    project_id=None,
                    entity_type="worker",
                    entity_id=row["id"],
                    action="created",
                    actor=self._import_actor(),
                    details={
                        "handle": row["handle"],
                        "name": row["name"],
                        "type": row["type"],
                        "agent_type": row["agent_type"],
                        "capabilities": worker.capabilities,
                        "imported_from": "cli",
                        "cli_handle": worker.handle,
                    },
                    occurred_at=self.now,
                    event_id=ev,
                )
            ledger.append((worker.key, row["id"], ev, created))
            self.outcome.tallies["workers"].created += created
            self.outcome.tallies["workers"].skipped += not created
        await self._ledger(conn, ledger)
        return ids

    async def _ensure_owner(self, conn: Conn) -> tuple[dict[str, Any], bool]:
        """The importing owner's worker: found by SSO subject, else created (claimed)."""
        sub = self.ctx.owner_sub
        await store_workers.lock_provisioning(conn, sub)
        existing = await store_workers.find_human_by_user_id(conn, sub)
        if existing is not None:
            self.owner = existing
            return existing, False
        alias = self.plan.owner_alias
        if alias is None:
            actor = Actor(None, "taskflow-import", "system", *IMPORT_CLIENT)
            row = await create_placeholder_human(conn, sub, self.tenant, actor, self.ctx.settings)
            self.owner = row
            return row, True
        row = await self._insert_free_handle(
            conn,
            alias.handle,
            name=alias.name,
            type="human",
            tenant_id=self.tenant,
            user_id=sub,
            now=self.plan.owner_alias_created_at or self.now,
        )
        self.owner = row
        await record_event(
            conn,
            tenant_id=self.tenant,
            project_id=None,
            entity_type="worker",
            entity_id=row["id"],
            action="created",
            actor=self._import_actor(),
            details={
                "handle": row["handle"],
                "name": row["name"],
                "type": "human",
                "user_id": sub,
                "imported_from": "cli",
                "cli_handle": alias.handle,
            },
            occurred_at=self.now,
            event_id=event_id(self.ctx.options, "created:owner"),
        )
        return row, True

    async def _ensure_worker(
        self, conn: Conn, worker: PlannedWorker
    ) -> tuple[dict[str, Any], bool]:
        if worker.user_id is not None:
            await store_workers.lock_provisioning(conn, worker.user_id)
            existing = await store_workers.find_human_by_user_id(conn, worker.user_id)
            if existing is not None:
                return existing, False
        else:
            cur = await conn.execute(
                f"SELECT {store_workers.WORKER_COLUMNS} FROM workers WHERE handle = %s",
                (worker.handle,),
            )
            existing = await cur.fetchone()
            if existing is not None and _reusable(existing, worker, self.tenant):
                return existing, False
        user_id = worker.user_id
        if worker.type == "human" and user_id is None:
            user_id = UNCLAIMED_PREFIX + worker.handle
        row = await self._insert_free_handle(
            conn,
            worker.handle,
            name=worker.name,
            type=worker.type,
            tenant_id=self.tenant,
            user_id=user_id,
            agent_type=worker.agent_type,
            capabilities=worker.capabilities,
            email=worker.email,
            now=worker.created_at or self.now,
        )
        if worker.type == "human" and worker.user_id is None and row["handle"] != worker.handle:
            # Keep the claim marker in step with the handle actually given.
            await conn.execute(
                "UPDATE workers SET user_id = %s WHERE id = %s",
                (UNCLAIMED_PREFIX + row["handle"], row["id"]),
            )
            row = {**row, "user_id": UNCLAIMED_PREFIX + row["handle"]}
        return row, True

    async def _insert_free_handle(self, conn: Conn, base: str, **columns: Any) -> dict[str, Any]:
        for _ in range(_MAX_HANDLE_ATTEMPTS):
            taken = await store_workers.taken_handles(conn, base)
            handle = naming.first_free(base, taken, naming.HANDLE_MAX)
            row = await store_workers.insert_worker(conn, handle=handle, **columns)
            if row is not None:
                return row
        raise RuntimeError(f"no free handle for {base}")

    async def _load_workers(self) -> None:
        """Handles and types of every mapped worker (audit events name them)."""
        keys = [OWNER_KEY, *(w.key for w in self.plan.workers)]
        by_id = {self.ids[k]: k for k in keys if k in self.ids}
        async with _transaction(self.conn) as conn:
            cur = await conn.execute(
                "SELECT id, handle, type, name, user_id FROM workers WHERE id = ANY(%s)",
                (list(by_id),),
            )
            for row in await cur.fetchall():
                key = by_id[row["id"]]
                self.handles[key] = row["handle"]
                self.types[key] = row["type"]
                if key == OWNER_KEY:
                    self.owner = row
        self.outcome.owner_handle = self.handles.get(OWNER_KEY)

    # -- projects and memberships ----------------------------------------------------------------
    async def _write_projects(self, conn: Conn, projects: list[PlannedProject]) -> dict[str, int]:
        ids: dict[str, int] = {}
        ledger: list[tuple[str, int | None, uuid.UUID | None, bool]] = []
        assert self.owner is not None
        for project in projects:
            row = await store_projects.insert_project(
                conn,
                tenant_id=self.tenant,
                slug=project.slug,
                name=project.name,
                description=project.description,
                owner_id=self.ctx.owner_sub,
                owner_worker_id=self.owner["id"],
                is_default=False,
                now=self.now,
            )
            if row is None:
                raise ImportConflict(
                    f"project {project.slug}: the slug was taken in tenant {self.tenant} while "
                    "importing; nothing of this chunk was written"
                )
            ev = event_id(self.ctx.options, f"created:{project.key}")
            await record_event(
                conn,
                tenant_id=self.tenant,
                project_id=row["id"],
                entity_type="project",
                entity_id=row["id"],
                action="created",
                actor=self._import_actor(),
                details={
                    "slug": project.slug,
                    "name": project.name,
                    "tenant_id": self.tenant,
                    "imported_from": "cli",
                },
                occurred_at=self.now,
                event_id=ev,
            )
            ids[project.key] = row["id"]
            ledger.append((project.key, row["id"], ev, True))
        self.outcome.tallies["projects"].created += len(projects)
        await self._ledger(conn, ledger)
        return ids

    async def _write_members(self, conn: Conn, members: list[PlannedMember]) -> dict[str, int]:
        ids: dict[str, int] = {}
        ledger: list[tuple[str, int | None, uuid.UUID | None, bool]] = []
        for member in members:
            project_id = self.ids[member.project_key]
            worker_id = self.ids[member.worker_key]
            row = await store_members.add_member(conn, project_id, worker_id, "member", self.now)
            ev = None
            if row is not None:
                ev = event_id(self.ctx.options, f"created:{member.key}")
                await record_event(
                    conn,
                    tenant_id=self.tenant,
                    project_id=project_id,
                    entity_type="project",
                    entity_id=project_id,
                    action="member_added",
                    actor=self._import_actor(),
                    details={
                        "worker_id": worker_id,
                        "handle": row["handle"],
                        "type": row["type"],
                        "imported_from": "cli",
                    },
                    occurred_at=self.now,
                    event_id=ev,
                )
                ids[member.key] = row["id"]
            ledger.append((member.key, row["id"] if row else None, ev, row is not None))
            self.outcome.tallies["memberships"].created += row is not None
            self.outcome.tallies["memberships"].skipped += row is None
        await self._ledger(conn, ledger)
        return ids

    # -- tasks ---------------------------------------------------------------------------------
    async def _write_tasks(self, conn: Conn, tasks: list[PlannedTask]) -> dict[str, int]:
        if not tasks:
            return {}
        # Ids drawn up front so a subtask in the same chunk can name its parent.
        cur = await conn.execute(
            "SELECT nextval(pg_get_serial_sequence('tasks.tasks', 'id')) AS id"
            " FROM generate_series(1, %s)",
            (len(tasks),),
        )
        new_ids = [int(row["id"]) for row in await cur.fetchall()]
        ids = {task.key: new_id for task, new_id in zip(tasks, new_ids, strict=True)}
        known = {**self.ids, **ids}
        rows = []
        for task in tasks:
            rows.append(
                (
                    ids[task.key],
                    known[task.project_key],
                    task.title,
                    task.description,
                    task.status,
                    task.priority,
                    task.progress_percent,
                    task.tags,
                    task.due_date,
                    task.is_recurring,
                    task.recurrence_pattern,
                    known[task.assignee_key] if task.assignee_key else None,
                    known[task.parent_key] if task.parent_key else None,
                    known[task.creator_key],
                    task.started_at,
                    task.completed_at,
                    task.created_at,
                    task.updated_at,
                )
            )
        async with conn.cursor() as cursor:
            await cursor.executemany(
                """
                INSERT INTO tasks (id, project_id, title, description, status, priority,
                    progress_percent, tags, due_date, is_recurring, recurrence_pattern,
                    assignee_id, parent_task_id, created_by_id, started_at, completed_at,
                    created_at, updated_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                """,
                rows,
            )
        await self._ledger(conn, [(t.key, ids[t.key], None, True) for t in tasks])
        self.outcome.tallies["tasks"].created += len(tasks)
        return ids

    # -- audit ---------------------------------------------------------------------------------
    def _event_actor(self, event: PlannedEvent) -> Actor:
        key = event.actor_key
        kind: ActorType = "agent" if event.actor_type == "agent" else "human"
        if key is None or key not in self.ids:
            return Actor(None, event.actor_handle, kind)
        if self.types.get(key) in ("human", "agent"):
            kind = "agent" if self.types[key] == "agent" else "human"
        return Actor(self.ids[key], self.handles.get(key, event.actor_handle), kind)

    async def _write_events(self, conn: Conn, events: list[PlannedEvent]) -> dict[str, int]:
        # record_event builds each outbox row exactly as live events are built; the batch
        # collects its statements and sends them as one executemany (one round trip per chunk
        # instead of one per event: 50,000 history entries in seconds, not minutes).
        batch = _StatementBatch()
        for event in events:
            project_id = self.ids[event.project_key] if event.project_key else None
            if event.entity_type == "cli_task":
                entity_id = event.cli_entity_id
            else:
                assert event.entity_key is not None
                entity_id = self.ids[event.entity_key]
            actor = self._event_actor(event)
            details = dict(event.details)
            if actor.handle != event.actor_handle:
                details["cli_actor"] = event.actor_handle
            await record_event(
                cast(Conn, batch),
                tenant_id=self.tenant,
                project_id=project_id,
                entity_type=event.entity_type,
                entity_id=entity_id,
                action=event.action,
                actor=actor,
                details=details,
                occurred_at=event.occurred_at,
                event_id=event.event_id,
            )
        await batch.flush(conn)
        await self._ledger(conn, [(e.key, None, e.event_id, True) for e in events])
        self.outcome.tallies["audit entries"].created += len(events)
        return {}

    # -- run bookkeeping -------------------------------------------------------------------------
    async def _start_run(self) -> None:
        async with _transaction(self.conn) as conn:
            await conn.execute(
                """
                INSERT INTO import_runs (tenant_id, source_fingerprint, source_path, owner_id,
                                         local_time, started_at)
                VALUES (%s, %s, %s, %s, %s, %s)
                ON CONFLICT (tenant_id, source_fingerprint)
                DO UPDATE SET runs = import_runs.runs + 1
                """,
                (
                    self.tenant,
                    self.fingerprint,
                    self.ctx.source_path,
                    self.ctx.owner_sub,
                    self.ctx.local_time,
                    self.now,
                ),
            )

    async def _finish_run(self) -> None:
        async with _transaction(self.conn) as conn:
            await conn.execute(
                "UPDATE import_runs SET completed_at = COALESCE(completed_at, %s)"
                " WHERE tenant_id = %s AND source_fingerprint = %s",
                (self.ctx.settings.clock(), self.tenant, self.fingerprint),
            )


class _StatementBatch:
    """Stands in for a connection: collects ``execute(sql, params)`` calls of one statement
    and runs them with ``executemany`` on the real connection."""

    def __init__(self) -> None:
        self.sql: str | None = None
        self.params: list[Sequence[Any]] = []

    async def execute(self, sql: str, params: Sequence[Any]) -> None:
        if self.sql is not None and sql != self.sql:
            raise AssertionError("a statement batch holds one statement")
        self.sql = sql
        self.params.append(params)

    async def flush(self, conn: Conn) -> None:
        if self.sql is None:
            return
        async with conn.cursor() as cur:
            await cur.executemany(self.sql, self.params)
        self.sql, self.params = None, []


class ImportConflict(RuntimeError):
    """The database changed under the import in a way it cannot resolve on its own."""


def _reusable(row: dict[str, Any], worker: PlannedWorker, tenant: str) -> bool:
    """An existing worker with the CLI worker's handle is the same worker: same type and
    tenant (humans and agents alike; another tenant's worker is never reused)."""
    return bool(row["type"] == worker.type and row["tenant_id"] == tenant)


async def _ledger_exists(conn: Conn) -> bool:
    cur = await conn.execute("SELECT to_regclass('tasks.import_ledger') IS NOT NULL AS ok")
    row = await cur.fetchone()
    return bool(row and row["ok"])
