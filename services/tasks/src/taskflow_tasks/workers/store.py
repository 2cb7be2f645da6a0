"""SQL for workers (humans and agents)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import psycopg

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]

WORKER_COLUMNS = (
    "id, handle, name, type, user_id, api_key_id, tenant_id, agent_type, capabilities, email,"
    " created_at, updated_at"
)


async def find_human_caller(conn: Conn, user_id: str, tenant_id: str) -> Row | None:
    """The human worker of ``user_id`` and their Default project in ``tenant_id`` (if any)."""
    cur = await conn.execute(
        """
        SELECT w.id, w.handle, w.name, w.type, p.id AS default_project_id
        FROM tasks.workers w
        LEFT JOIN tasks.projects p
          ON p.owner_worker_id = w.id AND p.tenant_id = %s
         AND p.is_default AND p.deleted_at IS NULL
        WHERE w.user_id = %s AND w.type = 'human'
        """,
        (tenant_id, user_id),
    )
    return await cur.fetchone()


_AGENT_CALLER = (
    "SELECT id, handle, name, type, tenant_id, NULL::bigint AS default_project_id"
    " FROM tasks.workers WHERE type = 'agent' AND tenant_id = %s"
)


async def find_api_key_agent(conn: Conn, tenant_id: str, api_key_id: str) -> Row | None:
    """The agent worker of a ``tf_`` API key in ``tenant_id``."""
    cur = await conn.execute(_AGENT_CALLER + " AND api_key_id = %s", (tenant_id, api_key_id))
    return await cur.fetchone()


async def find_token_agent(
    conn: Conn, tenant_id: str, sub: str, client_id: str | None
) -> Row | None:
    """The agent worker of agent JWTs with this subject and OAuth client in ``tenant_id``."""
    cur = await conn.execute(
        _AGENT_CALLER + " AND agent_sub = %s AND agent_client_id IS NOT DISTINCT FROM %s",
        (tenant_id, sub, client_id),
    )
    return await cur.fetchone()


async def lock_provisioning(conn: Conn, principal: str) -> None:
    """Serialise provisioning of one principal (transaction-scoped: PgBouncer-safe)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
        (f"taskflow:provision:{principal}",),
    )


async def taken_handles(conn: Conn, base: str) -> set[str]:
    """Handles equal to ``base`` or ``base-<anything>`` (candidates for collision suffixes)."""
    cur = await conn.execute(
        "SELECT handle FROM tasks.workers WHERE handle = %s OR starts_with(handle, %s)",
        (base, base + "-"),
    )
    return {row["handle"] for row in await cur.fetchall()}


async def insert_worker(
    conn: Conn,
    *,
    handle: str,
    name: str,
    type: str,
    tenant_id: str,
    now: datetime,
    user_id: str | None = None,
    api_key_id: str | None = None,
    agent_sub: str | None = None,
    agent_client_id: str | None = None,
    agent_type: str | None = None,
    capabilities: list[str] | None = None,
    email: str | None = None,
) -> Row | None:
    """Insert a worker; ``None`` when a unique key (handle, user id, agent key) is taken."""
    cur = await conn.execute(
        f"""
        INSERT INTO tasks.workers (handle, name, type, user_id, api_key_id, agent_sub,
                             agent_client_id, tenant_id, agent_type, capabilities, email,
                             created_at, updated_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s)
        ON CONFLICT DO NOTHING
        RETURNING {WORKER_COLUMNS}
        """,
        (
            handle,
            name,
            type,
            user_id,
            api_key_id,
            agent_sub,
            agent_client_id,
            tenant_id,
            agent_type,
            orjson.dumps(capabilities or []).decode(),
            email,
            now,
            now,
        ),
    )
    return await cur.fetchone()


async def find_human_by_user_id(conn: Conn, user_id: str) -> Row | None:
    cur = await conn.execute(
        f"SELECT {WORKER_COLUMNS} FROM tasks.workers WHERE user_id = %s AND type = 'human'",
        (user_id,),
    )
    return await cur.fetchone()


async def find_human_in_tenant(conn: Conn, user_id: str, tenant_id: str) -> Row | None:
    """The human worker of ``user_id`` with ``in_tenant``: whether they have been seen in
    ``tenant_id`` (first login there, a project of theirs there, or a membership there)."""
    cur = await conn.execute(
        f"""
        SELECT {WORKER_COLUMNS},
               (w.tenant_id = %(tenant)s
                OR EXISTS (SELECT 1 FROM tasks.projects p
                           WHERE p.owner_worker_id = w.id AND p.tenant_id = %(tenant)s)
                OR EXISTS (SELECT 1 FROM tasks.project_members m
                           JOIN tasks.projects p ON p.id = m.project_id
                           WHERE m.worker_id = w.id AND p.tenant_id = %(tenant)s)) AS in_tenant
        FROM tasks.workers w
        WHERE w.user_id = %(user)s AND w.type = 'human'
        """,
        {"user": user_id, "tenant": tenant_id},
    )
    return await cur.fetchone()


# The user_id of a human written by ``taskflow import-cli`` until an SSO login claims it.
UNCLAIMED_PREFIX = "cli-import:"


async def find_claimable_import(conn: Conn, tenant_id: str, email: str) -> Row | None:
    """The unclaimed imported human of ``tenant_id`` whose recorded email is ``email`` (the
    whole address; case-insensitive, as the SSO lower-cases addresses), locked."""
    cur = await conn.execute(
        f"""
        SELECT {WORKER_COLUMNS} FROM tasks.workers
        WHERE type = 'human' AND starts_with(user_id, 'cli-import:') AND tenant_id = %s
          AND email IS NOT NULL AND lower(email) = lower(%s)
        ORDER BY id
        LIMIT 1
        FOR UPDATE
        """,
        (tenant_id, email),
    )
    return await cur.fetchone()


async def claim_import(
    conn: Conn, worker_id: int, user_id: str, email: str | None, now: datetime
) -> Row | None:
    """Give an unclaimed imported human its SSO subject (``None`` if claimed meanwhile)."""
    cur = await conn.execute(
        f"""
        UPDATE tasks.workers SET user_id = %s, email = COALESCE(email, %s), updated_at = %s
        WHERE id = %s AND type = 'human' AND starts_with(user_id, 'cli-import:')
        RETURNING {WORKER_COLUMNS}
        """,
        (user_id, email, now, worker_id),
    )
    return await cur.fetchone()


async def get_worker(conn: Conn, worker_id: int, *, lock: bool = False) -> Row | None:
    cur = await conn.execute(
        f"SELECT {WORKER_COLUMNS} FROM tasks.workers WHERE id = %s{' FOR UPDATE' if lock else ''}",
        (worker_id,),
    )
    return await cur.fetchone()


async def get_workers(conn: Conn, worker_ids: list[int]) -> list[Row]:
    cur = await conn.execute(
        f"SELECT {WORKER_COLUMNS} FROM tasks.workers WHERE id = ANY(%s)", (worker_ids,)
    )
    return await cur.fetchall()


async def find_by_handles(conn: Conn, handles: list[str]) -> list[Row]:
    """The workers holding any of ``handles`` (handles are unique across tenants)."""
    cur = await conn.execute(
        f"SELECT {WORKER_COLUMNS} FROM tasks.workers WHERE handle = ANY(%s)", (handles,)
    )
    return await cur.fetchall()


async def set_user_id(conn: Conn, worker_id: int, user_id: str) -> None:
    await conn.execute("UPDATE tasks.workers SET user_id = %s WHERE id = %s", (user_id, worker_id))


async def list_agents(conn: Conn, tenant_id: str, limit: int, offset: int) -> list[Row]:
    cur = await conn.execute(
        f"""
        SELECT {WORKER_COLUMNS} FROM tasks.workers
        WHERE tenant_id = %s AND type = 'agent'
        ORDER BY created_at DESC, id DESC
        LIMIT %s OFFSET %s
        """,
        (tenant_id, limit, offset),
    )
    return await cur.fetchall()


async def list_all_agents(conn: Conn, tenant_id: str) -> list[Row]:
    cur = await conn.execute(
        f"SELECT {WORKER_COLUMNS} FROM tasks.workers WHERE tenant_id = %s AND type = 'agent'"
        " ORDER BY created_at DESC, id DESC",
        (tenant_id,),
    )
    return await cur.fetchall()


async def update_agent(conn: Conn, worker_id: int, changes: dict[str, Any], now: datetime) -> Row:
    """Apply ``changes`` (name / agent_type / capabilities) and bump ``updated_at``."""
    sets = []
    values: list[Any] = []
    for column in ("name", "agent_type", "capabilities"):
        if column in changes:
            if column == "capabilities":
                sets.append("capabilities = %s::jsonb")
                values.append(orjson.dumps(changes[column]).decode())
            else:
                sets.append(f"{column} = %s")
                values.append(changes[column])
    sets.append("updated_at = %s")
    values.extend([now, worker_id])
    cur = await conn.execute(
        f"UPDATE tasks.workers SET {', '.join(sets)} WHERE id = %s RETURNING {WORKER_COLUMNS}",
        values,
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def agent_references(conn: Conn, worker_id: int) -> Row:
    """How many live projects list the agent as a member, and how many tasks it created."""
    cur = await conn.execute(
        """
        SELECT
          (SELECT count(*) FROM tasks.project_members m JOIN tasks.projects p ON p.id = m.project_id
            WHERE m.worker_id = %(id)s AND p.deleted_at IS NULL) AS memberships,
          (SELECT count(*) FROM tasks.tasks t WHERE t.created_by_id = %(id)s) AS created_tasks
        """,
        {"id": worker_id},
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def unassign(conn: Conn, worker_id: int, now: datetime) -> list[Row]:
    """Leave every task assigned to the worker unassigned; those tasks (id, project_id), locked
    in id order so concurrent changes queue instead of deadlocking."""
    cur = await conn.execute(
        """
        WITH gone AS (
            SELECT id FROM tasks.tasks WHERE assignee_id = %(id)s ORDER BY id FOR UPDATE
        )
        UPDATE tasks.tasks t SET assignee_id = NULL, updated_at = %(now)s
        FROM gone WHERE t.id = gone.id
        RETURNING t.id, t.project_id
        """,
        {"id": worker_id, "now": now},
    )
    return sorted(await cur.fetchall(), key=lambda row: row["id"])


async def delete_agent(conn: Conn, worker_id: int) -> None:
    """Remove the agent and its memberships of deleted projects (live ones were checked)."""
    await conn.execute("DELETE FROM tasks.project_members WHERE worker_id = %s", (worker_id,))
    await conn.execute("DELETE FROM tasks.workers WHERE id = %s AND type = 'agent'", (worker_id,))
