"""Who may see and change a project: tenant isolation, membership and ownership.

Rules (shared by projects, members and tasks):
- a project outside the caller's tenant, or soft-deleted, does not exist for them: 404
  ("Project not found"; a task in such a project is "Task not found");
- inside the tenant, a non-member gets 403 "Not a member of this project";
- the owner is the worker that created the project (``owner_worker_id``); owner-only actions
  get 403 with the action's own message.
"""

from __future__ import annotations

from typing import Any

import psycopg
from taskflow_core.errors import Forbidden, NotFound

from ..callers.caller import Caller
from . import store

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]

PROJECT_NOT_FOUND = "Project not found"
NOT_A_MEMBER = "Not a member of this project"


def require_member(row: Row | None, role: str | None, not_found: str = PROJECT_NOT_FOUND) -> Row:
    """``row`` (found in the caller's tenant) when the caller has a ``role`` in its project."""
    if row is None:
        raise NotFound(not_found)
    if role is None:
        raise Forbidden(NOT_A_MEMBER)
    return row


def require_found(row: Row | None, not_found: str = PROJECT_NOT_FOUND) -> Row:
    if row is None:
        raise NotFound(not_found)
    return row


def is_owner(project: Row, caller: Caller) -> bool:
    return bool(project["owner_worker_id"] == caller.worker_id)


def require_owner(project: Row, caller: Caller, message: str) -> Row:
    """403 ``message`` unless the caller owns the project (membership is not consulted)."""
    if not is_owner(project, caller):
        raise Forbidden(message)
    return project


async def project_in_tenant(
    conn: Conn, caller: Caller, project_id: int, *, lock: bool = False
) -> Row:
    """The live project in the caller's tenant (404 otherwise), with ``caller_role``."""
    row = await store.get_with_role(conn, project_id, caller.tenant_id, caller.worker_id, lock=lock)
    return require_found(row)


async def project_for_member(
    conn: Conn, caller: Caller, project_id: int, *, lock: bool = False
) -> Row:
    """The project (ProjectRead columns + ``caller_role``) if the caller is a member."""
    row = await project_in_tenant(conn, caller, project_id, lock=lock)
    return require_member(row, row["caller_role"])


async def project_for_owner(
    conn: Conn, caller: Caller, project_id: int, message: str, *, lock: bool = False
) -> Row:
    """The project if the caller owns it (404 outside the tenant, 403 ``message`` otherwise)."""
    row = await project_in_tenant(conn, caller, project_id, lock=lock)
    return require_owner(row, caller, message)
