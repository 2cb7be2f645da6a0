"""The audit service's use cases: store a batch, read a history, verify a project's chain.

Each read checks access first (through :class:`TasksDirectory`, cached) and then runs one
query. A task's project is derived from its stored entries; it is asked of the tasks service
(which remembers the project of deleted tasks too) only for a task with no stored entry yet, so
the history of a deleted task stays readable even before the relay has delivered its events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from taskflow_core.errors import NotFound

from .access import (
    TASK_NOT_FOUND,
    CallerRef,
    TasksDirectory,
    TTLCache,
    require_owner,
    require_reader,
)
from .chain import ChainReport
from .events import AuditEvent, RejectedEvent, parse_event
from .paging import Page
from .store import AuditStore, Scope, SearchFilters

log = structlog.get_logger("taskflow.audit")


@dataclass(frozen=True)
class IngestOutcome:
    results: list[dict[str, Any]]
    stored: int
    duplicates: int
    rejected: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "results": self.results,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
        }


def entry_view(row: dict[str, Any]) -> dict[str, Any]:
    """An entry as the API shows it (AuditRead plus project_id and event_id), time in UTC."""
    return {
        "id": row["id"],
        "entity_type": row["entity_type"],
        "entity_id": row["entity_id"],
        "action": row["action"],
        "actor_id": row["actor_id"],
        "actor_handle": row["actor_handle"],
        "actor_type": row["actor_type"],
        "details": row["details"],
        "created_at": row["created_at"].astimezone(UTC),
        "project_id": row["project_id"],
        "event_id": row["event_id"],
    }


class AuditHistory:
    def __init__(
        self,
        store: AuditStore,
        directory: TasksDirectory,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.directory = directory
        self.clock = clock
        # A task never changes project: once its entries said where it lives, that holds.
        self._task_scopes: TTLCache[int, tuple[int, str]] = TTLCache(3600.0, max_entries=50_000)

    # -- ingestion -------------------------------------------------------------------------------
    async def ingest(self, raw_events: Sequence[Any]) -> IngestOutcome:
        """Validate each event, store the valid ones in batch order (each event id once)."""
        parsed = [parse_event(index, raw) for index, raw in enumerate(raw_events)]
        valid = [p for p in parsed if isinstance(p, AuditEvent)]
        appended = iter(await self.store.append(valid, self.clock()))
        results: list[dict[str, Any]] = []
        counts = {"stored": 0, "duplicate": 0, "rejected": 0}
        for index, item in enumerate(parsed):
            if isinstance(item, RejectedEvent):
                results.append(
                    {
                        "index": index,
                        "event_id": item.event_id,
                        "status": "rejected",
                        "id": None,
                        "reason": item.reason,
                    }
                )
                counts["rejected"] += 1
                continue
            done = next(appended)
            results.append(
                {
                    "index": index,
                    "event_id": str(done.event_id),
                    "status": done.outcome,
                    "id": done.id,
                    "reason": None,
                }
            )
            counts[done.outcome] += 1
        log.info(
            "audit_ingested",
            stored=counts["stored"],
            duplicates=counts["duplicate"],
            rejected=counts["rejected"],
        )
        if counts["rejected"]:
            log.warning(
                "audit_events_rejected",
                rejected=[r for r in results if r["status"] == "rejected"][:20],
            )
        return IngestOutcome(results, counts["stored"], counts["duplicate"], counts["rejected"])

    # -- reads -----------------------------------------------------------------------------------
    async def task_history(
        self, caller: CallerRef, task_id: int, page: Page
    ) -> list[dict[str, Any]]:
        project_id, tenant_id = await self._task_scope(task_id)
        if tenant_id != caller.tenant_id:
            raise NotFound(TASK_NOT_FOUND)
        require_reader(await self.directory.project_access(caller, project_id), TASK_NOT_FOUND)
        return await self.store.list_for_entity("task", task_id, page)

    async def _task_scope(self, task_id: int) -> tuple[int, str]:
        async def from_entries() -> tuple[int, str]:
            scope = await self.store.task_scope(task_id)
            if scope is None:
                raise LookupError(task_id)
            return scope

        try:
            return await self._task_scopes.get(task_id, from_entries)
        except LookupError:
            pass
        known = await self.directory.task_project(task_id)
        if known is None:
            raise NotFound(TASK_NOT_FOUND)
        return known

    async def project_history(
        self, caller: CallerRef, project_id: int, page: Page
    ) -> list[dict[str, Any]]:
        require_reader(await self.directory.project_access(caller, project_id))
        return await self.store.list_for_project(project_id, page)

    async def search(
        self, caller: CallerRef, project_id: int | None, filters: SearchFilters, page: Page
    ) -> list[dict[str, Any]]:
        """One project's entries (after its access check), or else every project the caller
        may read plus the project-less entries of their tenant."""
        if project_id is not None:
            require_reader(await self.directory.project_access(caller, project_id))
            scope = Scope(caller.tenant_id, (project_id,), tenant_level=False)
        else:
            readable = await self.directory.readable_projects(caller)
            scope = Scope(caller.tenant_id, readable, tenant_level=True)
        return await self.store.search(scope, filters, page)

    # -- verification ----------------------------------------------------------------------------
    async def verify_project(self, caller: CallerRef, project_id: int) -> ChainReport:
        require_owner(await self.directory.project_access(caller, project_id))
        report = await self.store.verify_project(project_id)
        if not report.ok:
            log.error("audit_chain_broken", project_id=project_id, **report.as_dict())
        return report
