"""SQL for projects and their memberships."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg

from ..tasks.queries import lock_subtrees

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]

# ProjectRead, counts included, so one query answers a read (no per-project COUNT round trips).
PROJECT_READ = """
    p.id, p.slug, p.name, p.description, p.owner_id, p.owner_worker_id, p.is_default,
    p.tenant_id, p.created_at, p.updated_at,
    (SELECT count(*) FROM tasks.project_members pm WHERE pm.project_id = p.id) AS member_count,
    (SELECT count(*) FROM tasks.tasks t WHERE t.project_id = p.id) AS task_count
"""


async def list_for_member(
    conn: Conn, worker_id: int, tenant_id: str, limit: int, offset: int
) -> list[Row]:
    """Live projects of ``tenant_id`` the worker belongs to: Default first, then oldest first."""
    cur = await conn.execute(
        f"""
        SELECT {PROJECT_READ}
        FROM tasks.project_members m JOIN tasks.projects p ON p.id = m.project_id
        WHERE m.worker_id = %s AND p.tenant_id = %s AND p.deleted_at IS NULL
        ORDER BY p.is_default DESC, p.created_at ASC, p.id ASC
        LIMIT %s OFFSET %s
        """,
        (worker_id, tenant_id, limit, offset),
    )
    return await cur.fetchall()


async def get_with_role(
    conn: Conn, project_id: int, tenant_id: str, worker_id: int, *, lock: bool = False
) -> Row | None:
    """The live project in ``tenant_id`` with the worker's role in it (``None`` if not a
    member); ``lock`` takes the project's row lock for a following write."""
    cur = await conn.execute(
        f"""
        SELECT {PROJECT_READ}, m.role AS caller_role
        FROM tasks.projects p
        LEFT JOIN tasks.project_members m ON m.project_id = p.id AND m.worker_id = %s
        WHERE p.id = %s AND p.tenant_id = %s AND p.deleted_at IS NULL
        {"FOR UPDATE OF p" if lock else ""}
        """,
        (worker_id, project_id, tenant_id),
    )
    return await cur.fetchone()


async def get_read(conn: Conn, project_id: int) -> Row:
    cur = await conn.execute(
        f"SELECT {PROJECT_READ} FROM tasks.projects p WHERE p.id = %s", (project_id,)
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def taken_slugs(conn: Conn, tenant_id: str, base: str) -> set[str]:
    cur = await conn.execute(
        "SELECT slug FROM tasks.projects WHERE tenant_id = %s AND deleted_at IS NULL"
        " AND (slug = %s OR starts_with(slug, %s))",
        (tenant_id, base, base + "-"),
    )
    return {row["slug"] for row in await cur.fetchall()}


@dataclass(frozen=True)
class NewProject:
    """A project to insert: its tenant, slug, name and description, and its owner (SSO user
    id and worker)."""

    tenant_id: str
    slug: str
    name: str
    description: str | None
    owner_id: str
    owner_worker_id: int
    is_default: bool = False


async def insert_project(conn: Conn, project: NewProject, now: datetime) -> Row | None:
    """Insert a project with its owner's membership; ``None`` when the slug is taken in the
    tenant (or a Default project already exists for this owner there)."""
    cur = await conn.execute(
        """
        WITH project AS (
            INSERT INTO tasks.projects (tenant_id, slug, name, description, owner_id,
                                        owner_worker_id, is_default, created_at, updated_at)
            VALUES (%(tenant_id)s, %(slug)s, %(name)s, %(description)s, %(owner_id)s,
                    %(owner_worker_id)s, %(is_default)s, %(now)s, %(now)s)
            ON CONFLICT DO NOTHING
            RETURNING *
        ), owner AS (
            INSERT INTO tasks.project_members (project_id, worker_id, role, joined_at)
            SELECT id, %(owner_worker_id)s, 'owner', %(now)s FROM project
        )
        SELECT id, slug, name, description, owner_id, owner_worker_id, is_default, tenant_id,
               created_at, updated_at, 1::bigint AS member_count, 0::bigint AS task_count
        FROM project
        """,
        {**asdict(project), "now": now},
    )
    return await cur.fetchone()


async def update_project(
    conn: Conn, project_id: int, changes: dict[str, Any], now: datetime
) -> Row:
    sets = [f"{column} = %s" for column in changes] + ["updated_at = %s"]
    cur = await conn.execute(
        f"""
        WITH updated AS (
            UPDATE tasks.projects SET {", ".join(sets)} WHERE id = %s RETURNING *
        )
        SELECT {PROJECT_READ} FROM updated p
        """,
        [*changes.values(), now, project_id],
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def delete_tasks(conn: Conn, project_id: int) -> list[Row]:
    """Remove every task of the project (subtasks included); the removed rows, parents first.

    The tasks are locked leaves first before the DELETE, in the order a task delete takes
    (``tasks.queries.lock_subtrees`` says why)."""
    await conn.execute(lock_subtrees("project_id = %s AND parent_task_id IS NULL"), (project_id,))
    cur = await conn.execute(
        "DELETE FROM tasks.tasks WHERE project_id = %s RETURNING id, title, status, parent_task_id",
        (project_id,),
    )
    return sorted(await cur.fetchall(), key=lambda row: row["id"])


async def soft_delete(conn: Conn, project_id: int, now: datetime) -> None:
    await conn.execute(
        "UPDATE tasks.projects SET deleted_at = %s, updated_at = %s WHERE id = %s",
        (now, now, project_id),
    )
