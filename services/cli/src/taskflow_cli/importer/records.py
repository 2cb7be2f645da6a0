"""The Phase I CLI's records as read from its files, and the problems found in them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong (``fatal``) or worth knowing (warning) about the input, on one line."""

    where: str
    message: str
    fatal: bool = True

    def line(self) -> str:
        return f"{'problem' if self.fatal else 'warning'}: {self.where}: {self.message}"


@dataclass(frozen=True)
class CliProject:
    index: int
    slug: str
    name: str
    description: str | None


@dataclass(frozen=True)
class CliWorker:
    index: int
    handle: str
    type: str
    name: str
    agent_type: str | None
    capabilities: tuple[str, ...]
    created_at: datetime | None


@dataclass(frozen=True)
class CliTask:
    index: int
    id: int
    title: str
    description: str | None
    status: str
    priority: str
    progress_percent: int
    project_slug: str
    assigned_to: str | None
    parent_id: int | None
    tags: tuple[str, ...]
    due_date: datetime | None
    recurrence: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CliAuditEntry:
    index: int
    id: int | None
    task_id: int | None
    project_slug: str | None
    actor: str
    actor_type: str
    action: str
    context: dict[str, Any]
    timestamp: datetime
    raw_timestamp: str


@dataclass(frozen=True)
class CliConfig:
    default_project: str | None = None
    current_user: str | None = None


@dataclass
class CliData:
    projects: list[CliProject] = field(default_factory=list)
    workers: list[CliWorker] = field(default_factory=list)
    tasks: list[CliTask] = field(default_factory=list)
    audit: list[CliAuditEntry] = field(default_factory=list)
    config: CliConfig = field(default_factory=CliConfig)
    # Ids / handles / slugs of rows refused for their own problems: references to them are
    # not reported again as dangling.
    refused_tasks: set[int] = field(default_factory=set)
    refused_workers: set[str] = field(default_factory=set)
    refused_projects: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class SourceFiles:
    """The located files: ``data.json``'s bytes (``b""`` when absent) and its fingerprint."""

    data_path: Path
    data: bytes
    config: bytes | None

    @property
    def fingerprint(self) -> str:
        """SHA-256 of data.json: the identity of this import in the ledger and in event ids."""
        return hashlib.sha256(self.data).hexdigest()
