"""Rules of agents and the workers overview, free of I/O (unit-tested on their own)."""

from __future__ import annotations

from typing import Any

from taskflow_core.errors import BadRequest, Conflict


def check_agent_deletable(memberships: int, created_tasks: int) -> None:
    """Live project memberships: 400 (the old message). Tasks it created: 409, since the creator
    is the task's history (the old API never checked and kept a dangling creator). Tasks merely
    assigned to it do not stop a delete: they are left unassigned, as in the old API."""
    if memberships:
        raise BadRequest("Agent is a member of one or more projects. Remove from projects first.")
    if created_tasks:
        raise Conflict(
            f"Agent created {created_tasks} task(s) and stays as their author: "
            "delete those tasks first."
        )


def merge_overview(
    sso_members: list[dict[str, Any]],
    memberships: list[dict[str, Any]],
    agents: list[dict[str, Any]],
) -> dict[str, Any]:
    """The WorkerListResponse: org members with their projects in this tenant, and agents."""
    by_user: dict[str, list[dict[str, Any]]] = {}
    for row in memberships:
        by_user.setdefault(row["user_id"], []).append(
            {"id": row["id"], "name": row["name"], "role": row["role"]}
        )
    org_members = []
    for member in sso_members:
        user_id = member_user_id(member)
        email = member.get("email")
        projects = by_user.get(user_id, [])
        org_members.append(
            {
                "user_id": user_id,
                "email": email,
                "name": member.get("name")
                or (email.split("@", 1)[0] if isinstance(email, str) else None),
                "image": member.get("image"),
                "org_role": member.get("role"),
                "projects": projects,
                "has_project_access": bool(projects),
            }
        )
    return {
        "org_members": org_members,
        "agents": [
            {
                "id": a["id"],
                "handle": a["handle"],
                "name": a["name"],
                "type": a["type"],
                "agent_type": a["agent_type"],
                "capabilities": a["capabilities"],
            }
            for a in agents
        ],
        "total_members": len(org_members),
        "total_agents": len(agents),
        "unassigned_count": sum(1 for m in org_members if not m["has_project_access"]),
    }


def member_user_id(member: dict[str, Any]) -> str:
    return str(member.get("userId") or member.get("user_id") or "")
