"""The CLI's history: when a task was started and completed, and each entry as an outbox event
(naming the database's worker for its actor when the import mapped one, and keeping the CLI's
own handle when it differs)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from taskflow_tasks.outbox.events import Actor, ActorType, Author, OutboxEvent

from .planned import PlannedEvent
from .records import CliAuditEntry, CliTask


def event_actor(
    event: PlannedEvent,
    ids: Mapping[str, int],
    handles: Mapping[str, str],
    types: Mapping[str, str],
) -> Actor:
    """The entry's actor: the mapped worker (its id, handle and type in the database), else
    the CLI's handle alone."""
    key = event.actor_key
    kind: ActorType = "agent" if event.actor_type == "agent" else "human"
    if key is None or key not in ids:
        return Actor(None, event.actor_handle, kind)
    if types.get(key) in ("human", "agent"):
        kind = "agent" if types[key] == "agent" else "human"
    return Actor(ids[key], handles.get(key, event.actor_handle), kind)


def history_event(
    event: PlannedEvent,
    tenant: str,
    ids: Mapping[str, int],
    handles: Mapping[str, str],
    types: Mapping[str, str],
) -> OutboxEvent:
    """The outbox event of one CLI history entry, built as live events are. ``ids``, ``handles``
    and ``types`` map the plan's keys to the rows the import wrote."""
    project_id = ids[event.project_key] if event.project_key else None
    if event.entity_type == "cli_task":
        entity_id = event.cli_entity_id
    else:
        assert event.entity_key is not None
        entity_id = ids[event.entity_key]
    actor = event_actor(event, ids, handles, types)
    details = dict(event.details)
    if actor.handle != event.actor_handle:
        details["cli_actor"] = event.actor_handle
    return Author(tenant, actor).event(
        event.entity_type,
        entity_id,
        project_id,
        event.action,
        details,
        event.occurred_at,
        event.event_id,
    )


def derive_work_times(
    task: CliTask, entries: list[CliAuditEntry]
) -> tuple[datetime | None, datetime | None]:
    """(started_at, completed_at) from a task's history (entries in time order), local time.

    Started: the first ``started`` (or an ``updated`` to in_progress), for a task that is no
    longer pending. Completed: the last ``completed``/``approved`` (or ``updated`` to
    completed), for a task that is completed now. Anything else stays unknown (``None``)."""

    def status_of(entry: CliAuditEntry) -> Any:
        return entry.context.get("status") if entry.action == "updated" else None

    started = completed = None
    if task.status != "pending":
        for entry in entries:
            if entry.action == "started" or status_of(entry) == "in_progress":
                started = entry.timestamp
                break
    if task.status == "completed":
        for entry in reversed(entries):
            if entry.action in ("completed", "approved") or status_of(entry) == "completed":
                completed = entry.timestamp
                break
    return started, completed
