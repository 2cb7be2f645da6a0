"""Audit events into the transactional outbox, in the caller's transaction.

Every state change records its event on the same connection (inside the same transaction) as
the change itself, so an event exists if and only if the change committed. An
:class:`Author` (who, in which tenant) builds the events of its changes: ``project_event``,
``worker_event``, ``task_event``; :func:`record` writes one, :func:`record_all` a batch in one
round trip. The relay delivers them to the audit service.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
import psycopg

ActorType = Literal["human", "agent", "system"]


@dataclass(frozen=True)
class Actor:
    """Who made a change: a worker (id + handle) of a given type, and the OAuth client used."""

    worker_id: int | None
    handle: str | None
    actor_type: ActorType = "human"
    client_id: str | None = None
    client_name: str | None = None


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@dataclass(frozen=True)
class OutboxEvent:
    """One outbox row ready to insert: its event id, the payload as JSON text, its time."""

    event_id: uuid.UUID
    payload: str
    created_at: datetime

    # The INSERT as a statement of its own or inside a larger one (a CTE of the change).
    INSERT = (
        "INSERT INTO tasks.outbox (event_id, payload, created_at)"
        " VALUES (%(_event_id)s, %(_payload)s::jsonb, %(_event_at)s)"
    )

    def params(self) -> dict[str, Any]:
        return {"_event_id": self.event_id, "_payload": self.payload, "_event_at": self.created_at}


async def record(conn: psycopg.AsyncConnection[Any], event: OutboxEvent) -> uuid.UUID:
    """Write ``event`` into the outbox on ``conn``, in its transaction; return its event id."""
    await conn.execute(OutboxEvent.INSERT, event.params())
    return event.event_id


async def record_all(conn: psycopg.AsyncConnection[Any], events: Sequence[OutboxEvent]) -> None:
    """Write ``events`` into the outbox on ``conn`` in one round trip (a bulk import)."""
    async with conn.cursor() as cur:
        await cur.executemany(OutboxEvent.INSERT, [event.params() for event in events])


async def record_event(
    conn: psycopg.AsyncConnection[Any],
    *,
    tenant_id: str,
    project_id: int | None,
    entity_type: str,
    entity_id: int,
    action: str,
    actor: Actor,
    details: dict[str, Any],
    occurred_at: datetime,
    event_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Write one audit event (see :meth:`Author.event`) into the outbox on ``conn``, in its
    transaction; return its event id."""
    author = Author(tenant_id, actor)
    event = author.event(entity_type, entity_id, project_id, action, details, occurred_at, event_id)
    return await record(conn, event)


@dataclass(frozen=True)
class Author:
    """Who makes changes, in which tenant: the events of their changes carry both."""

    tenant_id: str
    actor: Actor

    def project_event(
        self,
        project_id: int,
        action: str,
        details: dict[str, Any],
        at: datetime,
        event_id: uuid.UUID | None = None,
    ) -> OutboxEvent:
        """An event of project ``project_id`` itself (its members included)."""
        return self.event("project", project_id, project_id, action, details, at, event_id)

    def worker_event(
        self,
        worker_id: int,
        action: str,
        details: dict[str, Any],
        at: datetime,
        event_id: uuid.UUID | None = None,
    ) -> OutboxEvent:
        """An event of a worker (human or agent): workers belong to no project."""
        return self.event("worker", worker_id, None, action, details, at, event_id)

    def task_event(
        self, task: Mapping[str, Any], action: str, details: dict[str, Any], at: datetime
    ) -> OutboxEvent:
        """An event of ``task`` (its ``id`` may be absent for a create: the INSERT fills it)."""
        return self.event("task", task.get("id"), task["project_id"], action, details, at)

    def event(
        self,
        entity_type: str,
        entity_id: int | None,
        project_id: int | None,
        action: str,
        details: dict[str, Any],
        at: datetime,
        event_id: uuid.UUID | None = None,
    ) -> OutboxEvent:
        """An event of any entity. ``details`` holds before/after values; the actor's client
        id/name are merged in. ``entity_id`` may be ``None`` when the statement that creates
        the entity fills it in (see ``tasks.inserts.create_checked``)."""
        event_id = event_id or uuid.uuid4()
        actor = self.actor
        merged = dict(details)
        if actor.client_id:
            merged.setdefault("client_id", actor.client_id)
        if actor.client_name:
            merged.setdefault("client_name", actor.client_name)
        payload = {
            "event_id": str(event_id),
            "tenant_id": self.tenant_id,
            "project_id": project_id,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "action": action,
            "actor_id": actor.worker_id,
            "actor_handle": actor.handle,
            "actor_type": actor.actor_type,
            "details": merged,
            "created_at": at.isoformat(),
        }
        return OutboxEvent(event_id, orjson.dumps(payload, default=_default).decode(), at)
