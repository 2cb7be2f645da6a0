"""Mapping the CLI's data onto the service's model (reference §8.4). Pure: no database.

The plan (``planned``) gives every row a stable key: the ledger records which keys an import of
this file into this tenant has written, which makes re-runs create nothing and lets a killed
run resume.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta
from typing import Any

from taskflow_tasks.recurrence.rules import RECURRENCE_PATTERNS

from .history import derive_work_times
from .planned import (
    OWNER_KEY,
    ImportOptions,
    Plan,
    PlannedEvent,
    PlannedMember,
    PlannedProject,
    PlannedTask,
    PlannedWorker,
    event_id,
    worker_key,
)
from .records import CliAuditEntry, CliData, CliTask, Problem
from .timezone import LocalTime, format_offset

# The CLI stamps a task's created_at just before its "created" audit entry. Entries for the
# same id from before that belong to an earlier task that was deleted and whose id was reused.
_SAME_TASK_SLACK = timedelta(seconds=1)
# What the audit service accepts in ``details`` (taskflow_audit.events), with room for ours.
_CONTEXT_MAX_BYTES = 60_000


def _task_where(task: CliTask) -> str:
    return f"tasks[{task.index}] (id {task.id})"


class _Planner:
    def __init__(self, data: CliData, options: ImportOptions, clock: LocalTime) -> None:
        self.data = data
        self.options = options
        self.clock = clock
        self.plan = Plan(problems=[])
        self.workers = {w.handle: w for w in data.workers}
        self.projects = {p.slug: p for p in data.projects}
        self.tasks = {t.id: t for t in data.tasks}
        alias = data.config.current_user
        alias_worker = self.workers.get(alias) if alias else None
        if (
            alias_worker is not None
            and alias_worker.type == "human"
            and (alias not in options.user_subs)
        ):
            self.plan.owner_alias = alias_worker

    def fail(self, where: str, message: str) -> None:
        self.plan.problems.append(Problem(where, message))

    def warn(self, where: str, message: str) -> None:
        self.plan.problems.append(Problem(where, message, fatal=False))

    def key_of(self, handle: str) -> str:
        alias = self.plan.owner_alias
        return OWNER_KEY if alias is not None and alias.handle == handle else worker_key(handle)

    # -- workers and projects ------------------------------------------------------------------
    def map_workers(self) -> None:
        for option, handles in (
            ("--user", self.options.user_subs),
            ("--email", self.options.user_emails),
        ):
            for handle in handles:
                if handle not in self.workers:
                    self.fail(f"{option} {handle}", "no worker with this handle in the file")
                elif self.workers[handle].type != "human":
                    self.fail(f"{option} {handle}", "only a human worker can be mapped to a user")
        for worker in self.data.workers:
            if self.key_of(worker.handle) == OWNER_KEY:
                if worker.created_at is not None:
                    self.plan.owner_alias_created_at = self.clock.to_utc(worker.created_at)
                continue
            self.plan.workers.append(
                PlannedWorker(
                    key=worker_key(worker.handle),
                    handle=worker.handle,
                    name=worker.name,
                    type=worker.type,
                    agent_type=worker.agent_type,
                    capabilities=list(worker.capabilities),
                    created_at=self.clock.to_utc(worker.created_at) if worker.created_at else None,
                    user_id=self.options.user_subs.get(worker.handle),
                    email=self.options.user_emails.get(worker.handle),
                )
            )
        unbound = [
            w.handle
            for w in self.plan.workers
            if w.type == "human" and w.user_id is None and w.email is None
        ]
        if unbound:
            # A first SSO login claims an imported human only by a verified email recorded here.
            self.plan.notes.append(
                f"no SSO login can claim {', '.join(unbound)} (imported with neither an SSO "
                "subject nor an email): bind each with --user @HANDLE=SUB, or record their "
                "email with --email @HANDLE=EMAIL"
            )

    def map_projects(self) -> None:
        for project in self.data.projects:
            self.plan.projects.append(
                PlannedProject(
                    f"project:{project.slug}", project.slug, project.name, project.description
                )
            )

    # -- tasks ---------------------------------------------------------------------------------
    def _deleted_ids(self) -> set[int]:
        return {
            e.task_id for e in self.data.audit if e.action == "deleted" and e.task_id is not None
        }

    def _parents(self) -> dict[int, int | None]:
        """Each valid task's parent (``None`` for roots and orphans), problems recorded."""
        deleted = self._deleted_ids()
        parents: dict[int, int | None] = {}
        for task in self.data.tasks:
            where = _task_where(task)
            pid = task.parent_id
            if pid is None:
                parents[task.id] = None
            elif pid == task.id:
                self.fail(where, "is its own parent")
            elif pid in self.tasks:
                parent = self.tasks[pid]
                if parent.project_slug != task.project_slug:
                    self.fail(
                        where,
                        f"parent {pid} is in project {parent.project_slug!r}, "
                        f"not {task.project_slug!r}",
                    )
                else:
                    parents[task.id] = pid
            elif pid in self.data.refused_tasks:
                pass  # the parent's own problem is reported; this branch is refused with it
            elif pid in deleted:
                self.warn(
                    where,
                    f"orphaned subtask: parent {pid} was deleted in the CLI; "
                    "imported without a parent",
                )
                parents[task.id] = None
            else:
                self.fail(where, f"dangling parent: no task {pid} (and no record of its deletion)")
        return parents

    def _ordered(self, parents: dict[int, int | None]) -> list[CliTask]:
        """Tasks with every parent before its children; tasks in a parent cycle (or under a
        refused parent) are refused."""
        depth: dict[int, int] = {}
        refused: set[int] = set()
        for task in self.data.tasks:
            path: list[int] = []
            current: int | None = task.id
            base: int | None = None
            while current is not None:
                if current in depth:
                    base = depth[current]
                    break
                if current in refused or current not in parents:
                    break
                if current in path:
                    cycle = [*path[path.index(current) :], current]
                    self.fail(
                        _task_where(self.tasks[current]),
                        "circular parent chain: " + " -> ".join(map(str, cycle)),
                    )
                    break
                path.append(current)
                current = parents[current]
                if current is None:
                    base = -1
            if base is None:
                refused.update(path)
                continue
            for member in reversed(path):
                base += 1
                depth[member] = base
        ordered = [t for t in self.data.tasks if t.id in depth]
        return sorted(ordered, key=lambda t: (depth[t.id], t.index))

    def _task_entries(self) -> tuple[dict[int, list[CliAuditEntry]], set[int]]:
        """Audit entries of each current task (by time), and positions of entries whose task
        id belongs to a task deleted in the CLI."""
        by_task: dict[int, list[CliAuditEntry]] = defaultdict(list)
        stale: set[int] = set()
        for entry in self.data.audit:
            if entry.task_id is None:
                continue
            task = self.tasks.get(entry.task_id)
            if task is None or entry.timestamp < task.created_at - _SAME_TASK_SLACK:
                stale.add(entry.index)
            else:
                by_task[entry.task_id].append(entry)
        for entries in by_task.values():
            entries.sort(key=lambda e: (e.timestamp, e.index))
        return by_task, stale

    def map_tasks(self) -> dict[int, list[CliAuditEntry]]:
        parents = self._parents()
        by_task, _ = self._task_entries()
        ordered = self._ordered(parents)
        valid = {t.id for t in ordered}
        stats = {"started": 0, "started_known": 0, "completed": 0, "completed_known": 0}
        for task in self.data.tasks:
            where = _task_where(task)
            refused = self.data.refused_workers
            if task.project_slug not in self.projects:
                if task.project_slug not in self.data.refused_projects:
                    self.fail(where, f"project {task.project_slug!r} does not exist")
                valid.discard(task.id)
            if task.assigned_to is not None and task.assigned_to not in self.workers:
                if task.assigned_to not in refused:
                    self.fail(where, f"dangling assignee: no worker {task.assigned_to}")
                valid.discard(task.id)
            if task.created_by not in self.workers:
                if task.created_by not in refused:
                    self.fail(where, f"created_by {task.created_by} is not a worker in the file")
                valid.discard(task.id)
        for task in ordered:
            if task.id not in valid:
                continue
            started, completed = derive_work_times(task, by_task.get(task.id, []))
            if task.status != "pending":
                stats["started"] += 1
                stats["started_known"] += started is not None
            if task.status == "completed":
                stats["completed"] += 1
                stats["completed_known"] += completed is not None
            pattern = (task.recurrence or "").strip()
            if pattern and pattern not in RECURRENCE_PATTERNS:
                self.warn(
                    _task_where(task),
                    f"recurrence {pattern!r} is not one of "
                    f"{', '.join(RECURRENCE_PATTERNS)}; imported as not recurring",
                )
                pattern = ""
            parent = parents.get(task.id)
            self.plan.tasks.append(
                PlannedTask(
                    key=f"task:{task.id}",
                    cli_id=task.id,
                    project_key=f"project:{task.project_slug}",
                    parent_key=f"task:{parent}" if parent is not None else None,
                    assignee_key=self.key_of(task.assigned_to) if task.assigned_to else None,
                    creator_key=self.key_of(task.created_by),
                    title=task.title,
                    description=task.description,
                    status=task.status,
                    priority=task.priority,
                    progress_percent=task.progress_percent,
                    tags=list(task.tags),
                    due_date=self.clock.to_utc(task.due_date) if task.due_date else None,
                    is_recurring=bool(pattern),
                    recurrence_pattern=pattern or None,
                    started_at=self.clock.to_utc(started) if started else None,
                    completed_at=self.clock.to_utc(completed) if completed else None,
                    created_at=self.clock.to_utc(task.created_at),
                    updated_at=self.clock.to_utc(task.updated_at),
                )
            )
        if stats["started"]:
            self.plan.notes.append(
                f"started_at derived from the history for {stats['started_known']} of "
                f"{stats['started']} started tasks; completed_at for "
                f"{stats['completed_known']} of {stats['completed']} completed tasks "
                "(the rest stay empty)"
            )
        return by_task

    def map_members(self) -> None:
        seen: set[tuple[str, str]] = set()
        for task in self.plan.tasks:
            for key in (task.assignee_key, task.creator_key):
                if key is None or key == OWNER_KEY or (task.project_key, key) in seen:
                    continue
                seen.add((task.project_key, key))
                slug = task.project_key.split(":", 1)[1]
                handle = key.split(":", 1)[1]
                self.plan.members.append(
                    PlannedMember(f"member:{slug}:{handle}", task.project_key, key)
                )

    # -- audit ---------------------------------------------------------------------------------
    def map_events(self) -> None:
        _, stale = self._task_entries()
        planned = {t.cli_id for t in self.plan.tasks}
        unknown_actors: dict[str, int] = defaultdict(int)
        deleted_tasks = 0
        for entry in self.data.audit:
            where = f"audit_logs[{entry.index}]" + (f" (id {entry.id})" if entry.id else "")
            project_key = (
                f"project:{entry.project_slug}" if entry.project_slug in self.projects else None
            )
            if entry.task_id is not None and entry.index not in stale:
                if entry.task_id not in planned:
                    continue  # the task itself was refused; its problem is already reported
                task = self.tasks[entry.task_id]
                entity_type, entity_key = "task", f"task:{task.id}"
                project_key = f"project:{task.project_slug}"
            elif entry.task_id is not None:
                entity_type, entity_key = "cli_task", None
                deleted_tasks += 1
            elif project_key is not None:
                entity_type, entity_key = "project", project_key
            else:
                self.warn(
                    where,
                    "names neither a task nor a known project; imported as a tenant-level entry",
                )
                entity_type, entity_key = "cli_task", None
            size = len(json.dumps(entry.context, default=str).encode())
            if size > _CONTEXT_MAX_BYTES:
                self.fail(where, f"context is {size} bytes of JSON (at most {_CONTEXT_MAX_BYTES})")
                continue
            if entry.actor not in self.workers:
                unknown_actors[entry.actor] += 1
            local = entry.timestamp
            offset = format_offset(self.clock.offset_of(local))
            marks: dict[str, Any] = {
                "imported_from": "cli",
                "cli_audit_id": entry.id,
                "cli_task_id": entry.task_id,
                "cli_project_slug": entry.project_slug,
                "local_time": entry.raw_timestamp,
                "utc_offset": offset,
            }
            # The CLI's context verbatim (nulls included), then what marks it as imported.
            details = {**entry.context, **{k: v for k, v in marks.items() if v is not None}}
            key = f"audit:{entry.index}"
            self.plan.events.append(
                PlannedEvent(
                    key=key,
                    event_id=event_id(self.options, key),
                    entity_type=entity_type,
                    entity_key=entity_key,
                    cli_entity_id=entry.task_id or 0,
                    project_key=project_key,
                    action=entry.action,
                    actor_key=self.key_of(entry.actor) if entry.actor in self.workers else None,
                    actor_handle=entry.actor,
                    actor_type=entry.actor_type,
                    details=details,
                    occurred_at=self.clock.to_utc(local),
                )
            )
        for handle, count in sorted(unknown_actors.items()):
            self.warn(
                f"audit_logs actor {handle}",
                f"not a worker in the file ({count} entries); imported with the handle only",
            )
        if deleted_tasks:
            self.plan.notes.append(
                f"{deleted_tasks} audit entries belong to tasks deleted in the CLI; imported with "
                "entity_type cli_task and the CLI task id"
            )


def build_plan(data: CliData, options: ImportOptions, clock: LocalTime) -> Plan:
    """Everything the import will write, in dependency order, and every problem found."""
    planner = _Planner(data, options, clock)
    planner.map_workers()
    planner.map_projects()
    planner.map_tasks()
    planner.map_members()
    planner.map_events()
    return planner.plan
