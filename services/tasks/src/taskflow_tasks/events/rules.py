"""Pure rules: which public events an outbox row (an audit event) means, with the reference's
payloads (reference-api.md §5.4), its quirks fixed (issue 18):

- approve emits ``task.completed`` too, not only PATCH /status;
- ``task.updated`` is emitted for PUT, progress and status changes;
- spawns from both triggers (on completion, on the due date) emit ``task.spawned``;
- ``task.completed`` carries ``creator_id`` (what the notification service reads) as well as
  ``user_id``.

``Facts`` are what the outbox row does not hold: the task as it is now, and who the people are
(SSO ``sub``, or ``@handle`` for agents). Event ids derive from the outbox event id, so an event
published twice (at least once) has the same id both times.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TASK_EVENTS = "task-events"
REMINDERS = "reminders"

EVENT_TYPES: dict[str, str] = {
    "task.created": TASK_EVENTS,
    "task.updated": TASK_EVENTS,
    "task.deleted": TASK_EVENTS,
    "task.completed": TASK_EVENTS,
    "task.assigned": TASK_EVENTS,
    "task.spawned": TASK_EVENTS,
    "reminder.due": REMINDERS,
}

# Audit detail keys that say which client made a change: not part of what changed.
CLIENT_KEYS = frozenset({"client_id", "client_name"})
# Field changes that are bookkeeping, not news (the spawner marking a source task spawned).
INTERNAL_KEYS = frozenset({"has_spawned_next", "spawned_task_id", "reason", "reminder_sent"})
TASK_FIELDS = (
    "id", "title", "description", "status", "priority", "progress_percent", "tags",
    "due_date", "project_id", "assignee_id", "parent_task_id", "is_recurring",
    "recurrence_pattern",
)  # fmt: skip


@dataclass(frozen=True)
class Event:
    """One public event: its type, topic, the reference's ``data``, and where it belongs."""

    id: str
    type: str
    data: dict[str, Any]
    time: str
    tenant_id: str | None
    project_id: int | None
    task_id: int | None

    @property
    def topic(self) -> str:
        return EVENT_TYPES[self.type]

    def envelope(self) -> dict[str, Any]:
        """The reference's envelope (§5.4): what its Dapr publisher sent."""
        return {"event_type": self.type, "data": self.data, "timestamp": self.time}


@dataclass(frozen=True)
class Facts:
    """What the outbox row does not say: the task now (``None`` once deleted), the subs (or
    ``@handle``) of the actor, the assignee and the creator, and the actor's name."""

    task: Mapping[str, Any] | None = None
    actor_ref: str | None = None
    actor_name: str | None = None
    assignee_ref: str | None = None
    creator_ref: str | None = None
    people: Mapping[int, str] = field(default_factory=dict)


def event_id(outbox_event_id: str, event_type: str) -> str:
    """Stable: the same outbox row always yields the same id for the same type."""
    return str(uuid.uuid5(uuid.UUID(outbox_event_id), event_type))


def task_view(task: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The reference's ``task`` object (§5.4)."""
    if task is None:
        return None
    view = {name: task.get(name) for name in TASK_FIELDS}
    due = view["due_date"]
    if due is not None and not isinstance(due, str):
        view["due_date"] = due.isoformat()
    view["tags"] = list(view["tags"] or [])
    return view


def events_of(row: Mapping[str, Any], facts: Facts) -> list[Event]:
    """The public events that the audit event ``row`` (an outbox payload) means, in order."""
    if row.get("entity_type") != "task" or row.get("entity_id") is None:
        return []
    action = str(row.get("action"))
    details: dict[str, Any] = dict(row.get("details") or {})
    actor = {"actor_id": facts.actor_ref, "actor_name": facts.actor_name}
    task_id = int(row["entity_id"])
    task = task_view(facts.task)
    found: list[tuple[str, dict[str, Any]]] = []
    if action in {"created", "cloned_subtask"}:
        found.append(
            (
                "task.created",
                {"task_id": task_id, "user_id": facts.assignee_ref, **actor, "task": task},
            )
        )
    elif action == "deleted":
        found.append(("task.deleted", {"task_id": task_id, "title": details.get("title"), **actor}))
    elif action in {"recurring_spawn", "spawned_recurring"}:
        source = details.get("spawned_from", details.get("recurring_from"))
        data = {
            "task_id": task_id,
            "spawned_from": source,
            "recurring_root": details.get("recurring_root"),
            "user_id": facts.assignee_ref or "",
            "task_title": (task or {}).get("title", details.get("title")),
            "project_id": row.get("project_id"),
        }
        found.append(("task.spawned", data))
    elif action == "reminder_due":
        data = {
            "task_id": task_id,
            "user_id": facts.assignee_ref,
            "title": (task or {}).get("title"),
            "project_id": row.get("project_id"),
            "due_at": details.get("due_at"),
            "hours_until_due": details.get("hours_until_due"),
        }
        found.append(("reminder.due", data))
    elif action == "assigned":
        found.extend(_assigned(row, details, facts, actor, task))
    else:
        changes = _changes(action, details)
        if changes:
            found.append(("task.updated", {"task_id": task_id, **actor, "changes": changes}))
        if _completes(action, details):
            creator = facts.creator_ref
            notify = creator if creator is not None and creator != facts.actor_ref else None
            data = {
                "task_id": task_id,
                "user_id": notify,
                "creator_id": notify,
                **actor,
                "task": task,
                "is_recurring": bool((task or {}).get("is_recurring")),
            }
            found.append(("task.completed", data))
    at = str(row.get("created_at"))
    return [
        Event(
            id=event_id(str(row["event_id"]), kind),
            type=kind,
            data=data,
            time=at,
            tenant_id=row.get("tenant_id"),
            project_id=row.get("project_id"),
            task_id=task_id,
        )
        for kind, data in found
    ]


def _assigned(
    row: Mapping[str, Any],
    details: dict[str, Any],
    facts: Facts,
    actor: dict[str, Any],
    task: dict[str, Any] | None,
) -> list[tuple[str, dict[str, Any]]]:
    after = details.get("after")
    found: list[tuple[str, dict[str, Any]]] = []
    changes = {"assignee_id": {"before": details.get("before"), "after": after}}
    found.append(("task.updated", {"task_id": row["entity_id"], **actor, "changes": changes}))
    if after is None or after == row.get("actor_id"):
        return found  # unassigned, or took it themselves: nobody to tell
    data = {
        "task_id": row["entity_id"],
        "task_title": (task or {}).get("title"),
        "user_id": facts.people.get(int(after)),
        **actor,
        "project_id": row.get("project_id"),
    }
    found.append(("task.assigned", data))
    return found


def _changes(action: str, details: dict[str, Any]) -> dict[str, Any]:
    if action in {"status_changed", "approved", "rejected"}:
        before = details.get("before", details.get("from_status"))
        after = details.get("after", details.get("to_status"))
        changes: dict[str, Any] = {"status": {"before": before, "after": after}}
        if action == "rejected":
            changes["reason"] = details.get("reason")
        return changes
    if action == "progress_updated":
        change = {"before": details.get("before"), "after": details.get("after")}
        return {"progress_percent": change, "note": details.get("note")}
    if action == "updated":
        return {
            key: value
            for key, value in details.items()
            if key not in CLIENT_KEYS and key not in INTERNAL_KEYS
        }
    return {}


def _completes(action: str, details: dict[str, Any]) -> bool:
    if action == "approved":
        return True
    return action == "status_changed" and details.get("after") == "completed"
