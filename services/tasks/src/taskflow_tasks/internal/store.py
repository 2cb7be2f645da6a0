"""SQL of the audit service's questions: the caller's worker as provisioning finds it, a
project with the caller's role in it, the projects they may read, a task's project."""

from __future__ import annotations

from typing import Any

import psycopg
from taskflow_core.auth.identity import Identity

from ..callers.caller import agent_key

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]


# The caller's worker as provisioning finds it: a human by SSO sub; an agent in its tenant by
# its API key id, or by the (sub, OAuth client) of its token.
_CALLER_WORKER = """
    SELECT id FROM tasks.workers
    WHERE CASE WHEN NOT %(agent)s THEN user_id = %(sub)s AND type = 'human'
               WHEN %(api_key_id)s::text IS NOT NULL
                    THEN type = 'agent' AND tenant_id = %(agent_tenant)s
                         AND api_key_id = %(api_key_id)s::text
               ELSE type = 'agent' AND tenant_id = %(agent_tenant)s
                    AND agent_sub = %(sub)s
                    AND agent_client_id IS NOT DISTINCT FROM %(client_id)s::text END
"""


def _caller_params(query: dict[str, Any]) -> dict[str, Any]:
    key = agent_key(
        Identity(
            sub=query["sub"],
            tenant_id=query["tenant_id"],
            actor_type="agent",
            client_id=query.get("client_id"),
            api_key_id=query.get("api_key_id"),
        )
    )
    return {
        "agent": query["actor_type"] == "agent",
        "sub": query["sub"],
        "agent_tenant": key.tenant_id,
        "api_key_id": key.api_key_id,
        "client_id": key.client_id,
    }


async def project_with_caller(conn: Conn, project_id: int, query: dict[str, Any]) -> Row | None:
    cur = await conn.execute(
        f"""
        WITH caller AS ({_CALLER_WORKER})
        SELECT p.id, p.tenant_id, p.owner_worker_id, p.deleted_at,
               (SELECT id FROM caller LIMIT 1) AS caller_worker_id,
               (SELECT m.role FROM tasks.project_members m
                 WHERE m.project_id = p.id AND m.worker_id IN (SELECT id FROM caller)
                 LIMIT 1) AS caller_role
        FROM tasks.projects p WHERE p.id = %(project_id)s
        """,
        {**_caller_params(query), "project_id": project_id},
    )
    return await cur.fetchone()


async def readable_project_ids(conn: Conn, query: dict[str, Any]) -> list[int]:
    cur = await conn.execute(
        f"""
        WITH caller AS ({_CALLER_WORKER})
        SELECT p.id FROM tasks.projects p
        WHERE p.tenant_id = %(tenant_id)s
          AND (p.owner_worker_id IN (SELECT id FROM caller)
               OR EXISTS (SELECT 1 FROM tasks.project_members m
                          WHERE m.project_id = p.id AND m.worker_id IN (SELECT id FROM caller)))
        ORDER BY p.id
        """,
        {**_caller_params(query), "tenant_id": query["tenant_id"]},
    )
    return [int(row["id"]) for row in await cur.fetchall()]


async def task_project(conn: Conn, task_id: int) -> Row | None:
    """The project and tenant of a task, live or deleted (``tasks.deleted_tasks``)."""
    cur = await conn.execute(
        "SELECT t.project_id, p.tenant_id"
        " FROM (SELECT project_id FROM tasks.tasks WHERE id = %(id)s"
        "       UNION ALL SELECT project_id FROM tasks.deleted_tasks WHERE id = %(id)s) t"
        " JOIN tasks.projects p ON p.id = t.project_id LIMIT 1",
        {"id": task_id},
    )
    return await cur.fetchone()
