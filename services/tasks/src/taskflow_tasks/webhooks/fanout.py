"""The ``webhooks`` outbox consumer: turns outbox rows into one delivery per event per
subscribed endpoint, in the transaction that moves its cursor (exactly once; no HTTP here, the
delivery worker sends them). With no active webhook anywhere the cursor simply follows the
outbox."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg_pool
from taskflow_core.db import transaction

from ..events import store as events
from ..events.rules import events_of
from . import rules
from . import store as webhooks

NAME = "webhooks"
BATCH = 500


async def fan_out_once(pool: psycopg_pool.AsyncConnectionPool) -> tuple[int, bool]:
    """Handle the next batch of outbox rows: the number of rows handled, and whether any
    webhook is active (none: nothing to fan out or send until one is made)."""
    async with transaction(pool) as conn:
        if not await webhooks.any_active(conn):
            await events.follow(conn, NAME)
            return 0, False
        rows = await events.next_rows(conn, NAME, BATCH)
        if not rows:
            return 0, True
        await webhooks.add_deliveries(conn, await _deliveries(conn, rows))
        last = rows[-1]
        await events.advance(conn, NAME, (int(last["txid"]), int(last["id"])))
    return len(rows), True


async def _deliveries(conn: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    payloads = [row["payload"] for row in rows]
    projects = sorted({int(p["project_id"]) for p in payloads if p.get("project_id")})
    hooks = await webhooks.active_for(conn, projects)
    if not hooks:
        return []
    by_project: dict[int, list[dict[str, Any]]] = {}
    for hook in hooks:
        by_project.setdefault(hook["project_id"], []).append(hook)
    facts = await events.facts_for(conn, [p for p in payloads if p.get("project_id") in by_project])
    found: list[dict[str, Any]] = []
    for payload in payloads:
        fact = facts.get(str(payload.get("event_id")))
        if fact is None:
            continue
        for event in events_of(payload, fact):
            for hook in by_project.get(int(payload["project_id"]), []):
                if event.type not in hook["events"]:
                    continue
                found.append(
                    {
                        "webhook_id": hook["id"],
                        "event_id": event.id,
                        "event_type": event.type,
                        "order_key": rules.order_key(event),
                        "body": rules.cloudevent(event),
                        # Stable across retries: derived from the event and the endpoint.
                        "message_id": "msg_" + uuid.uuid5(uuid.UUID(event.id), str(hook["id"])).hex,
                        "committed_at": payload.get("created_at"),
                    }
                )
    return found
