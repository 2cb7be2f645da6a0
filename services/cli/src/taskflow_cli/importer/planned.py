"""What an import will write: the planned rows, each with the stable ``key`` the ledger records
(``project:<slug>``, ``worker:<@handle>``, ``member:<slug>:<@handle>``, ``task:<cli id>``,
``audit:<position>``), and the event ids derived from those keys (uuid5), so the audit
service, idempotent on event ids, stores each entry once however many times it is delivered."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .records import CliWorker, Problem

# Namespace of import event ids: uuid5(namespace, "<tenant>\n<fingerprint>\n<key>").
EVENT_NAMESPACE = uuid.UUID("6f1c2a8e-9a43-5e0b-8d1c-0c7a1f1e2b3d")
OWNER_KEY = "owner"


@dataclass(frozen=True)
class ImportOptions:
    tenant_id: str
    fingerprint: str
    # ``--user @handle=SUB``: humans whose SSO subject is known at import time.
    user_subs: dict[str, str] = field(default_factory=dict)
    # ``--email @handle=ADDRESS``: lets a later SSO login with that email claim the worker.
    user_emails: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedWorker:
    key: str
    handle: str
    name: str
    type: str
    agent_type: str | None
    capabilities: list[str]
    created_at: datetime | None
    user_id: str | None
    email: str | None = None


@dataclass(frozen=True)
class PlannedProject:
    key: str
    slug: str
    name: str
    description: str | None


@dataclass(frozen=True)
class PlannedMember:
    key: str
    project_key: str
    worker_key: str


@dataclass(frozen=True)
class PlannedTask:
    key: str
    cli_id: int
    project_key: str
    parent_key: str | None
    assignee_key: str | None
    creator_key: str
    title: str
    description: str | None
    status: str
    priority: str
    progress_percent: int
    tags: list[str]
    due_date: datetime | None
    is_recurring: bool
    recurrence_pattern: str | None
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PlannedEvent:
    """One CLI audit entry as an outbox event. ``entity_type`` is ``task`` (``entity_key`` is
    the task's key), ``project`` (the project's key) or ``cli_task``: a task deleted in the CLI,
    whose only identity left is its CLI id (``cli_entity_id``)."""

    key: str
    event_id: uuid.UUID
    entity_type: str
    entity_key: str | None
    cli_entity_id: int
    project_key: str | None
    action: str
    actor_key: str | None
    actor_handle: str
    actor_type: str
    details: dict[str, Any]
    occurred_at: datetime


@dataclass
class Plan:
    workers: list[PlannedWorker] = field(default_factory=list)
    projects: list[PlannedProject] = field(default_factory=list)
    members: list[PlannedMember] = field(default_factory=list)
    tasks: list[PlannedTask] = field(default_factory=list)
    events: list[PlannedEvent] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # The CLI's current user (config.json), who is the importing owner: their CLI handle and name.
    owner_alias: CliWorker | None = None
    owner_alias_created_at: datetime | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def fatal(self) -> list[Problem]:
        return [p for p in self.problems if p.fatal]


def event_id(options: ImportOptions, key: str) -> uuid.UUID:
    """The event id of ``key`` for this file in this tenant (the same on every run)."""
    return uuid.uuid5(EVENT_NAMESPACE, f"{options.tenant_id}\n{options.fingerprint}\n{key}")


def worker_key(handle: str) -> str:
    return f"worker:{handle}"
