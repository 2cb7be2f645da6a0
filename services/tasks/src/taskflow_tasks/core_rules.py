"""Rules of projects, members and agents, free of I/O (unit-tested on their own)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from taskflow_core.errors import BadRequest, Conflict

PROJECT_UPDATE_OWNER_ONLY = "Only project owner can update"
PROJECT_DELETE_OWNER_ONLY = "Only project owner can delete"
MEMBERS_ADD_OWNER_ONLY = "Only project owner can add members"
MEMBERS_REMOVE_OWNER_ONLY = "Only project owner can remove members"


def field_changes(
    current: Mapping[str, Any], requested: Mapping[str, Any], *, nullable: Collection[str] = ()
) -> dict[str, dict[str, Any]]:
    """``{field: {"before", "after"}}`` for each requested field whose value differs.

    A field absent from ``requested`` is unchanged. ``null`` clears a field listed in
    ``nullable`` and means "unchanged" for the others (what old clients send)."""
    changes: dict[str, dict[str, Any]] = {}
    for name, value in requested.items():
        if value is None and name not in nullable:
            continue
        if current.get(name) != value:
            changes[name] = {"before": current.get(name), "after": value}
    return changes


def check_project_deletable(project: Mapping[str, Any], *, force: bool) -> None:
    """After the owner check, as the old API: Default project (400), tasks without force (400)."""
    if project["is_default"]:
        raise BadRequest("Cannot delete default project")
    if project["task_count"] and not force:
        raise BadRequest(
            f"Project has {project['task_count']} tasks. Delete tasks first or use force=true"
        )


def member_target(user_id: str | None, agent_id: int | None) -> tuple[str, str | int]:
    """``("user", id)`` or ``("agent", id)``; empty values count as absent (as the old API)."""
    if not user_id and not agent_id:
        raise BadRequest("Provide either user_id or agent_id")
    if user_id and agent_id:
        raise BadRequest("Provide only one of user_id or agent_id")
    if user_id:
        return ("user", user_id)
    assert agent_id is not None
    return ("agent", agent_id)


def check_member_removable(member: Mapping[str, Any]) -> None:
    if member["role"] == "owner":
        raise BadRequest("Cannot remove project owner")


def check_agent_deletable(memberships: int, tasks: int) -> None:
    """Live project memberships: 400 (the old message); tasks naming it: 409, never a 500."""
    if memberships:
        raise BadRequest("Agent is a member of one or more projects. Remove from projects first.")
    if tasks:
        raise Conflict(
            f"Agent is the assignee or creator of {tasks} task(s). "
            "Reassign or delete those tasks first."
        )


def search_description(worker_type: str) -> str:
    return "AI Agent" if worker_type == "agent" else "Team Member"
