"""A Phase I CLI ``.taskflow`` folder built the way the CLI builds one (reference §8, §3.4).

:class:`CliSimulation` performs CLI commands (add, subtask, start, progress, review, approve,
complete, delegate, due, delete) and writes what the CLI writes: tasks with naive local
timestamps and an audit entry per command, numbered ``len(logs) + 1``. Used by the importer's
tests and by ``bench/import_bench.py``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any


@dataclass
class CliSimulation:
    now: datetime = datetime(2025, 3, 1, 9, 0, 0)
    projects: list[dict[str, Any]] = field(default_factory=list)
    workers: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    audit_logs: list[dict[str, Any]] = field(default_factory=list)
    current_user: str = "@alice"
    step: timedelta = timedelta(minutes=7)
    by_id: dict[int, dict[str, Any]] = field(default_factory=dict)

    def tick(self) -> str:
        self.now += self.step
        return self.now.isoformat()

    def _type_of(self, actor: str) -> str:
        return next((w["type"] for w in self.workers if w["id"] == actor), "human")

    def log(
        self,
        actor: str,
        action: str,
        task_id: int | None,
        slug: str | None,
        context: dict[str, Any],
    ) -> None:
        self.audit_logs.append(
            {
                "id": len(self.audit_logs) + 1,
                "task_id": task_id,
                "project_slug": slug,
                "actor_id": actor,
                "actor_type": self._type_of(actor),
                "action": action,
                "context": context,
                "timestamp": self.tick(),
            }
        )

    def project(self, slug: str, name: str, description: str | None = None) -> None:
        self.projects.append({"slug": slug, "name": name, "description": description})

    def human(self, handle: str, name: str) -> None:
        self.workers.append(
            {
                "id": handle,
                "type": "human",
                "name": name,
                "agent_type": None,
                "capabilities": [],
                "created_at": self.tick(),
            }
        )

    def agent(self, handle: str, name: str, agent_type: str, capabilities: list[str]) -> None:
        self.workers.append(
            {
                "id": handle,
                "type": "agent",
                "name": name,
                "agent_type": agent_type,
                "capabilities": capabilities,
                "created_at": self.tick(),
            }
        )

    def task(
        self,
        actor: str,
        slug: str,
        title: str,
        *,
        parent: int | None = None,
        priority: str = "medium",
        tags: list[str] | None = None,
        due: str | None = None,
        recurrence: str | None = None,
        description: str | None = None,
    ) -> int:
        task_id = max(self.by_id, default=0) + 1
        stamp = self.tick()
        self.tasks.append(
            {
                "id": task_id,
                "title": title,
                "description": description,
                "status": "pending",
                "priority": priority,
                "progress_percent": 0,
                "project_slug": slug,
                "assigned_to": None,
                "parent_id": parent,
                "tags": tags or [],
                "due_date": f"{due}T00:00:00" if due else None,
                "recurrence": recurrence,
                "created_by": actor,
                "created_at": stamp,
                "updated_at": stamp,
            }
        )
        self.by_id[task_id] = self.tasks[-1]
        if parent is None:
            self.log(actor, "created", task_id, slug, {"title": title, "priority": priority})
        else:
            self.log(
                actor,
                "subtask_created",
                task_id,
                slug,
                {"title": title, "priority": priority, "parent_id": parent},
            )
        return task_id

    def get(self, task_id: int) -> dict[str, Any]:
        return self.by_id[task_id]

    def _set(self, task_id: int, **changes: Any) -> dict[str, Any]:
        task = self.get(task_id)
        task.update(changes)
        task["updated_at"] = self.now.isoformat()
        return task

    def start(self, actor: str, task_id: int) -> None:
        task = self.get(task_id)
        self.log(actor, "started", task_id, task["project_slug"], {"status": "in_progress"})
        self._set(task_id, status="in_progress", assigned_to=task["assigned_to"] or actor)

    def progress(self, actor: str, task_id: int, percent: int, note: str | None = None) -> None:
        task = self.get(task_id)
        context: dict[str, Any] = {"progress_percent": percent}
        if note:
            context["note"] = note
        self.log(actor, "progressed", task_id, task["project_slug"], context)
        self._set(task_id, progress_percent=percent)

    def review(self, actor: str, task_id: int) -> None:
        task = self.get(task_id)
        self.log(actor, "review_requested", task_id, task["project_slug"], {"status": "review"})
        self._set(task_id, status="review")

    def approve(self, actor: str, task_id: int) -> None:
        task = self.get(task_id)
        self.log(actor, "approved", task_id, task["project_slug"], {"status": "completed"})
        self._set(task_id, status="completed", progress_percent=100)

    def complete(self, actor: str, task_id: int) -> None:
        task = self.get(task_id)
        self.log(actor, "completed", task_id, task["project_slug"], {"status": "completed"})
        self._set(task_id, status="completed", progress_percent=100)

    def delegate(self, actor: str, task_id: int, to: str) -> None:
        task = self.get(task_id)
        self.log(
            actor,
            "delegated",
            task_id,
            task["project_slug"],
            {"from": task["assigned_to"], "to": to},
        )
        self._set(task_id, assigned_to=to)

    def due(self, actor: str, task_id: int, date: str) -> None:
        task = self.get(task_id)
        old = task["due_date"][:10] if task["due_date"] else None
        self.log(
            actor,
            "due_date_set",
            task_id,
            task["project_slug"],
            {"old_date": old, "new_date": date},
        )
        self._set(task_id, due_date=f"{date}T00:00:00")

    def delete(self, actor: str, task_id: int) -> None:
        task = self.get(task_id)
        self.log(actor, "deleted", task_id, task["project_slug"], {"title": task["title"]})
        self.tasks.remove(task)
        del self.by_id[task_id]

    def data(self) -> dict[str, Any]:
        return {
            "projects": self.projects,
            "workers": self.workers,
            "tasks": self.tasks,
            "audit_logs": self.audit_logs,
        }

    def write(self, root: Path) -> Path:
        """Write ``root/.taskflow/{data,config}.json`` as the CLI does; return the folder."""
        folder = root / ".taskflow"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "data.json").write_text(json.dumps(self.data(), indent=2, default=str))
        (folder / "config.json").write_text(
            json.dumps(
                {
                    "default_project": "default",
                    "current_user": self.current_user,
                    "storage_mode": "json",
                },
                indent=2,
            )
        )
        return folder


def realistic() -> CliSimulation:
    """Several projects, humans and agents, nested subtasks, due dates, a long history, an
    orphaned subtask, a space-separated timestamp and a reused audit id."""
    sim = CliSimulation()
    sim.human("@alice", "Alice")
    sim.human("@bob", "Bob Builder")
    sim.agent("@claude", "Claude", "claude", ["python", "review"])
    sim.agent("@qwen-coder", "Qwen", "qwen", ["typescript"])
    sim.project("default", "Default Project", "Default project created on init")
    sim.project("website", "Website", "The public site")
    sim.project("infra", "Infrastructure", None)

    launch = sim.task(
        "@alice",
        "website",
        "Launch the site",
        priority="high",
        tags=["launch", "q2"],
        due="2025-04-30",
    )
    design = sim.task("@alice", "website", "Design", parent=launch)
    mockups = sim.task("@bob", "website", "Mockups", parent=design, tags=["ui"])
    sim.task("@bob", "website", "Logo", parent=design)
    copy = sim.task("@alice", "website", "Copy", parent=launch, due="2025-04-01")
    sim.start("@bob", mockups)
    sim.progress("@bob", mockups, 40, "first drafts")
    sim.progress("@bob", mockups, 80)
    sim.review("@bob", mockups)
    sim.approve("@alice", mockups)
    sim.delegate("@alice", copy, "@claude")
    sim.start("@claude", copy)
    sim.progress("@claude", copy, 50)
    sim.due("@alice", copy, "2025-04-15")

    doomed = sim.task("@alice", "infra", "Old server")
    orphan = sim.task("@alice", "infra", "Migrate data off the old server", parent=doomed)
    sim.start("@qwen-coder", orphan)
    sim.delete("@alice", doomed)  # the CLI does not cascade: `orphan` keeps parent_id

    backups = sim.task("@alice", "infra", "Nightly backups", recurrence="daily", due="2025-03-20")
    sim.task("@bob", "infra", "Rotate keys", recurrence="every tuesday")
    sim.start("@alice", backups)
    sim.complete("@alice", backups)
    sim.task("@alice", "default", "Read the manual", priority="low")
    blocked = sim.task("@bob", "default", "Waiting on vendor", priority="critical")
    sim.start("@bob", blocked)
    sim.get(blocked)["status"] = "blocked"

    # A long history: many progress notes on one task.
    for percent in range(1, 61):
        sim.progress("@claude", copy, min(50 + percent // 2, 99), f"pass {percent}")

    # `default=str` wrote one timestamp with a space separator.
    sim.audit_logs[5]["timestamp"] = sim.audit_logs[5]["timestamp"].replace("T", " ")
    sim.get(mockups)["updated_at"] = sim.get(mockups)["updated_at"].replace("T", " ")
    # The CLI numbers audit entries len(logs) + 1: after a deletion, ids repeat.
    sim.audit_logs[-1]["id"] = sim.audit_logs[-2]["id"]
    return sim


def large(tasks: int, audit_entries: int, seed: int = 7) -> CliSimulation:
    """``tasks`` tasks (a third of them subtasks) over 20 projects and ``audit_entries``
    history entries, for the benchmark."""
    rng = random.Random(seed)
    sim = CliSimulation(step=timedelta(seconds=5))
    humans = [f"@user-{i}" for i in range(10)]
    agents = [f"@agent-{i}" for i in range(5)]
    for handle in humans:
        sim.human(handle, handle[1:].title())
    for handle in agents:
        sim.agent(handle, handle[1:].title(), "claude", ["python"])
    sim.current_user = humans[0]
    slugs = [f"project-{i}" for i in range(20)]
    for slug in slugs:
        sim.project(slug, slug.title())
    people = humans + agents
    ids: list[int] = []
    for n in range(tasks):
        parent = rng.choice(ids) if ids and n % 3 == 2 else None
        slug = sim.get(parent)["project_slug"] if parent else rng.choice(slugs)
        ids.append(
            sim.task(
                rng.choice(humans),
                slug,
                f"Task {n}",
                parent=parent,
                priority=rng.choice(["low", "medium", "high", "critical"]),
                tags=[f"t{n % 7}"],
                due="2025-06-01" if n % 4 == 0 else None,
            )
        )
    while len(sim.audit_logs) < audit_entries:
        task_id = rng.choice(ids)
        task = sim.get(task_id)
        actor = rng.choice(people)
        if task["status"] == "pending":
            sim.start(actor, task_id)
        elif task["status"] == "in_progress" and rng.random() < 0.1:
            sim.complete(actor, task_id)
        else:
            sim.progress(actor, task_id, rng.randint(0, 99), "work")
    return sim
