"""``GET /api/workers``: the tenant's organisation members (from the SSO) with their TaskFlow
projects, plus the tenant's agents (reference §1.5)."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi
import httpx
import structlog
from taskflow_core.errors import APIError, Forbidden, Unauthorized
from taskflow_core.routing import Operation, Route

from . import store_members, store_workers
from .core_schemas import WorkerListResponseSchema
from .deps import TasksDeps
from .provisioning import identity_of

log = structlog.get_logger("taskflow.workers")

TAG = "workers"
SSO_TIMEOUT = 30.0  # the old API's timeout for this call


def _sso_members(payload: Any) -> list[dict[str, Any]]:
    """Better Auth answers a list, or an object with ``members``."""
    if isinstance(payload, dict):
        payload = payload.get("members", [])
    if not isinstance(payload, list):
        raise APIError(502, "Failed to fetch org members from SSO: invalid response")
    return [m for m in payload if isinstance(m, dict)]


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


async def organization_members(
    deps: TasksDeps, req: falcon.asgi.Request, tenant_id: str, wait: float = SSO_TIMEOUT
) -> list[dict[str, Any]]:
    """The tenant's organisation members at the SSO, asked with the caller's own credentials
    (so the SSO answers only to its members), waiting ``wait`` seconds at most. SSO 401 →
    401, 403 → 403, anything else 502."""
    headers = {"Authorization": req.get_header("Authorization") or ""}
    cookie = req.get_header("Cookie")
    if cookie:
        headers["Cookie"] = cookie
    url = f"{deps.settings.sso_url.rstrip('/')}/api/organizations/{tenant_id}/members"
    try:
        answer = await deps.http.get(url, headers=headers, timeout=wait)
    except httpx.HTTPError as exc:
        log.warning("sso_members_unreachable", error=type(exc).__name__)
        raise APIError(502, f"Failed to connect to SSO: {type(exc).__name__}") from exc
    if answer.status_code == 401:
        raise Unauthorized("SSO authentication failed")
    if answer.status_code == 403:
        raise Forbidden("Not a member of this organization")
    if answer.status_code != 200:
        raise APIError(502, f"Failed to fetch org members from SSO: {answer.status_code}")
    try:
        return _sso_members(answer.json())
    except ValueError as exc:
        raise APIError(502, "Failed to fetch org members from SSO: invalid response") from exc


class WorkersOverview:
    def __init__(self, deps: TasksDeps) -> None:
        self.deps = deps

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        identity = identity_of(req)
        caller = await self.deps.provisioner.caller(identity)
        sso_members = await organization_members(self.deps, req, caller.tenant_id)
        user_ids = [member_user_id(m) for m in sso_members]
        async with self.deps.pool.connection() as conn:
            memberships = await store_members.projects_of_users(
                conn, caller.tenant_id, [u for u in user_ids if u]
            )
            agents = await store_workers.list_all_agents(conn, caller.tenant_id)
        resp.media = merge_overview(sso_members, memberships, agents)


def routes(deps: TasksDeps) -> list[Route]:
    return [
        Route(
            "/api/workers",
            WorkersOverview(deps),
            (
                Operation(
                    "GET",
                    "Workers overview",
                    TAG,
                    response=WorkerListResponseSchema,
                    errors=(403, 502),
                    example={
                        "org_members": [
                            {
                                "user_id": "user-5f1c2a9e",
                                "email": "alice@example.com",
                                "name": "Alice",
                                "image": None,
                                "org_role": "admin",
                                "projects": [{"id": 7, "name": "Website", "role": "owner"}],
                                "has_project_access": True,
                            }
                        ],
                        "agents": [
                            {
                                "id": 12,
                                "handle": "@claude-coder",
                                "name": "Claude Coder",
                                "type": "agent",
                                "agent_type": "claude",
                                "capabilities": ["python"],
                            }
                        ],
                        "total_members": 1,
                        "total_agents": 1,
                        "unassigned_count": 0,
                    },
                    description="Your organisation's members from the SSO (your Authorization "
                    "is forwarded) with their projects in this tenant, and this tenant's "
                    "agents. SSO 401 → 401, 403 → 403, other failures → 502.",
                ),
            ),
        ),
    ]
