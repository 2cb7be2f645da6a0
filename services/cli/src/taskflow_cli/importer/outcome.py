"""What an import run did (or would do), and what it reports its progress to."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from taskflow_core.config import Settings

from .planned import ImportOptions
from .source import Problem

CATEGORIES = ("workers", "projects", "memberships", "tasks", "audit entries")


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
