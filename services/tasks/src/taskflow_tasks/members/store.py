"""SQL for project memberships and member search."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from ..tasks.queries import like_pattern

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]

MEMBER_READ = """
    m.id, m.worker_id, w.handle, w.name, w.type, m.role, m.joined_at
"""


async def list_members(conn: Conn, project_id: int) -> list[Row]:
    """Members in join order (owner first as the earliest), id as the tiebreaker."""
    cur = await conn.execute(
        f"""
        SELECT {MEMBER_READ}
        FROM tasks.project_members m JOIN tasks.workers w ON w.id = m.worker_id
        WHERE m.project_id = %s
        ORDER BY m.joined_at ASC, m.id ASC
        """,
        (project_id,),
    )
    return await cur.fetchall()


async def add_member(
    conn: Conn, project_id: int, worker_id: int, role: str, now: datetime
) -> Row | None:
    """The new membership, or ``None`` when the worker is already a member."""
    cur = await conn.execute(
        f"""
        WITH m AS (
            INSERT INTO tasks.project_members (project_id, worker_id, role, joined_at)
            VALUES (%s, %s, %s, %s)
            ON CONFLICT (project_id, worker_id) DO NOTHING
            RETURNING *
        )
        SELECT {MEMBER_READ} FROM m JOIN tasks.workers w ON w.id = m.worker_id
        """,
        (project_id, worker_id, role, now),
    )
    return await cur.fetchone()


async def get_member(conn: Conn, project_id: int, member_id: int) -> Row | None:
    cur = await conn.execute(
        f"""
        SELECT {MEMBER_READ}
        FROM tasks.project_members m JOIN tasks.workers w ON w.id = m.worker_id
        WHERE m.id = %s AND m.project_id = %s
        FOR UPDATE OF m
        """,
        (member_id, project_id),
    )
    return await cur.fetchone()


async def remove_member(conn: Conn, member_id: int) -> None:
    await conn.execute("DELETE FROM tasks.project_members WHERE id = %s", (member_id,))


async def search(
    conn: Conn, tenant_id: str, query: str | None, project_id: int | None, limit: int
) -> list[Row]:
    """Workers visible in ``tenant_id`` whose handle or name contains ``query``.

    Visible: workers whose home tenant it is (its agents; humans who first logged in there) and
    the members of its live projects. With ``project_id``: only that project's members.
    Humans first, then by name, then id. ``total`` on each row is the full match count."""
    pattern = like_pattern(query.lower()) if query else None
    if project_id is not None:
        visible = "SELECT worker_id AS id FROM tasks.project_members WHERE project_id = %(project)s"
    else:
        # Two index lookups, not a scan of every worker: the tenant's own workers, and the
        # members of its live projects.
        visible = """
            SELECT id FROM tasks.workers WHERE tenant_id = %(tenant)s
            UNION
            SELECT m.worker_id FROM tasks.project_members m
            JOIN tasks.projects p ON p.id = m.project_id
            WHERE p.tenant_id = %(tenant)s AND p.deleted_at IS NULL"""
    text_filter = (
        "WHERE (lower(w.handle) LIKE %(pattern)s OR lower(w.name) LIKE %(pattern)s)"
        if pattern
        else ""
    )
    cur = await conn.execute(
        f"""
        WITH visible AS ({visible})
        SELECT w.id, w.handle, w.name, w.type, count(*) OVER () AS total
        FROM visible v JOIN tasks.workers w ON w.id = v.id
        {text_filter}
        ORDER BY w.type DESC, w.name ASC, w.id ASC
        LIMIT %(limit)s
        """,
        {"tenant": tenant_id, "project": project_id, "pattern": pattern, "limit": limit},
    )
    return await cur.fetchall()


async def projects_of_users(conn: Conn, tenant_id: str, user_ids: list[str]) -> list[Row]:
    """``(user_id, id, name, role)`` of the live projects of ``tenant_id`` each user is in."""
    if not user_ids:
        return []
    cur = await conn.execute(
        """
        SELECT w.user_id, p.id, p.name, m.role
        FROM tasks.workers w
        JOIN tasks.project_members m ON m.worker_id = w.id
        JOIN tasks.projects p ON p.id = m.project_id AND p.tenant_id = %s AND p.deleted_at IS NULL
        WHERE w.type = 'human' AND w.user_id = ANY(%s)
        ORDER BY p.id
        """,
        (tenant_id, user_ids),
    )
    return await cur.fetchall()
