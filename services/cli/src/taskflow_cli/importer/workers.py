"""The import's workers: the importing owner and the CLI's workers, found or created through the
tasks service's provisioning (free handles, placeholders, their events) and worker store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from taskflow_tasks.callers.provisioning import (
    create_placeholder_human,
    human_created,
    insert_with_free_handle,
)
from taskflow_tasks.outbox.events import Actor, Author, record
from taskflow_tasks.workers import store as workers
from taskflow_tasks.workers.store import UNCLAIMED_PREFIX

from .outcome import RunContext
from .planned import Plan, PlannedWorker, event_id

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]

# The OAuth client the import's events name (client id, client name).
IMPORT_CLIENT = ("taskflow-import-cli", "taskflow import-cli")


def import_author(owner: Row, tenant: str) -> Author:
    """The importing owner, through the importer, in the import's tenant."""
    return Author(tenant, Actor(owner["id"], owner["handle"], "human", *IMPORT_CLIENT))


def reusable(row: Row, worker: PlannedWorker, tenant: str) -> bool:
    """An existing worker with the CLI worker's handle is the same worker: same type and
    tenant (humans and agents alike; another tenant's worker is never reused)."""
    return bool(row["type"] == worker.type and row["tenant_id"] == tenant)


async def handle_notes(conn: Conn, plan: Plan, recorded: set[str], tenant: str) -> list[str]:
    """What the import says about CLI handles another worker already holds."""
    existing = {
        row["handle"]: row
        for row in await workers.find_by_handles(conn, [w.handle for w in plan.workers])
    }
    notes = []
    for worker in plan.workers:
        if worker.key in recorded:
            continue
        row = existing.get(worker.handle)
        if row is None or worker.user_id is not None or reusable(row, worker, tenant):
            continue
        notes.append(
            f"worker {worker.handle}: the handle belongs to another "
            f"{'tenant' if row['tenant_id'] != tenant else row['type']}'s worker; "
            "imported under the first free variant of it"
        )
    return notes


async def ensure_owner(
    conn: Conn, plan: Plan, ctx: RunContext, tenant: str, now: datetime
) -> tuple[Row, bool]:
    """The importing owner's worker: found by SSO subject, else created (claimed), as the
    CLI's current user when the plan names one. ``True`` when created."""
    sub = ctx.owner_sub
    await workers.lock_provisioning(conn, sub)
    existing = await workers.find_human_by_user_id(conn, sub)
    if existing is not None:
        return existing, False
    alias = plan.owner_alias
    if alias is None:
        author = Author(tenant, Actor(None, "taskflow-import", "system", *IMPORT_CLIENT))
        return await create_placeholder_human(conn, sub, author, ctx.settings), True
    row = await insert_with_free_handle(
        conn,
        alias.handle,
        name=alias.name,
        type="human",
        tenant_id=tenant,
        user_id=sub,
        now=plan.owner_alias_created_at or now,
    )
    details = human_created(row, sub, imported_from="cli", cli_handle=alias.handle)
    ev = event_id(ctx.options, "created:owner")
    await record(
        conn, import_author(row, tenant).worker_event(row["id"], "created", details, now, ev)
    )
    return row, True


async def ensure_worker(
    conn: Conn, worker: PlannedWorker, tenant: str, now: datetime
) -> tuple[Row, bool]:
    """The database's worker for a CLI worker: a human by their SSO subject, else the same
    handle's worker when reusable, else a new one. ``True`` when created."""
    if worker.user_id is not None:
        await workers.lock_provisioning(conn, worker.user_id)
        existing = await workers.find_human_by_user_id(conn, worker.user_id)
        if existing is not None:
            return existing, False
    else:
        found = await workers.find_by_handles(conn, [worker.handle])
        if found and reusable(found[0], worker, tenant):
            return found[0], False
    # A human imported without a known SSO subject is marked claimable by a later login.
    unclaimed = worker.type == "human" and worker.user_id is None
    row = await insert_with_free_handle(
        conn,
        worker.handle,
        name=worker.name,
        type=worker.type,
        tenant_id=tenant,
        user_id=UNCLAIMED_PREFIX + worker.handle if unclaimed else worker.user_id,
        agent_type=worker.agent_type,
        capabilities=worker.capabilities,
        email=worker.email,
        now=worker.created_at or now,
    )
    if unclaimed and row["handle"] != worker.handle:
        # Keep the claim marker in step with the handle actually given.
        await workers.set_user_id(conn, row["id"], UNCLAIMED_PREFIX + row["handle"])
        row = {**row, "user_id": UNCLAIMED_PREFIX + row["handle"]}
    return row, True


def worker_created(row: Row, worker: PlannedWorker) -> dict[str, Any]:
    """The details of an imported worker's "created" event."""
    return {
        "handle": row["handle"],
        "name": row["name"],
        "type": row["type"],
        "agent_type": row["agent_type"],
        "capabilities": worker.capabilities,
        "imported_from": "cli",
        "cli_handle": worker.handle,
    }
