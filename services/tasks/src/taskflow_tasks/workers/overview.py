"""``GET /api/workers``: the tenant's organisation members (from the SSO) with their TaskFlow
projects, plus the tenant's agents (reference §1.5)."""

from __future__ import annotations

from falcon.asgi import Request, Response
from taskflow_core.routing import Operation, Route

from ..callers.caller import identity_of
from ..deps import Resource, TasksDeps
from ..members import store as members
from . import store
from .organization import organization_members
from .rules import member_user_id, merge_overview
from .schemas import WorkerListResponseSchema

TAG = "workers"


class WorkersOverview(Resource):
    async def on_get(self, req: Request, resp: Response) -> None:
        identity = identity_of(req)
        caller = await self.deps.provisioner.caller(identity)
        sso_members = await organization_members(self.deps, req, caller.tenant_id)
        user_ids = [member_user_id(m) for m in sso_members]
        async with self.deps.pool.connection() as conn:
            memberships = await members.projects_of_users(
                conn, caller.tenant_id, [u for u in user_ids if u]
            )
            agents = await store.list_all_agents(conn, caller.tenant_id)
        resp.media = merge_overview(sso_members, memberships, agents)


_EXAMPLE = {
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
}
_OVERVIEW = Operation(
    "GET",
    "Workers overview",
    TAG,
    operation_id="getWorkersOverview",
    description="Your organisation's members from the SSO (your Authorization is forwarded) "
    "with their projects in this tenant, and this tenant's agents. SSO 401 → 401, 403 → 403, "
    "other failures → 502.",
    response=WorkerListResponseSchema,
    errors=(403, 502),
    example=_EXAMPLE,
)


def overview_routes(deps: TasksDeps) -> list[Route]:
    return [Route("/api/workers", WorkersOverview(deps), (_OVERVIEW,))]
