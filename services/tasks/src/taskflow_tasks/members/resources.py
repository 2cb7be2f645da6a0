"""Members: ``/api/projects/{project_id}/members[/{member_id}]`` and ``/api/members/search``
(reference §1.3), tenant-isolated."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from falcon.asgi import Request, Response
from taskflow_core.errors import BadRequest, NotFound
from taskflow_core.routing import OperationFamily, Route
from taskflow_core.schemas import OkSchema, load_body, load_query, parse_id

from ..callers.caller import Caller
from ..callers.provisioning import create_placeholder_human
from ..deps import Resource, TasksDeps
from ..outbox.events import record
from ..projects import access
from ..workers import store as workers
from ..workers.organization import organization_members
from ..workers.rules import member_user_id
from ..writes.idempotency import IDEMPOTENCY_HEADER, idempotent_post
from . import rules, store
from .schemas import (
    MEMBER_READ,
    MemberCreateSchema,
    MemberReadSchema,
    MemberSearchQuerySchema,
    MemberSearchResultSchema,
)

Conn = psycopg.AsyncConnection[Any]
TAG = "members"
MEMBER_EXAMPLE = {
    "id": 31,
    "worker_id": 12,
    "handle": "@claude-coder",
    "name": "Claude Coder",
    "type": "agent",
    "role": "member",
    "joined_at": "2025-12-10T08:15:30+00:00",
}

USER_NOT_FOUND = "User not found"

_create = MemberCreateSchema()
_search = MemberSearchQuerySchema()


class MemberCollection(Resource):
    async def on_get(self, req: Request, resp: Response, project_id: str) -> None:
        pid = parse_id(project_id, "project_id")
        async with self.deps.reading(req) as (conn, caller):
            await access.project_for_member(conn, caller, pid)
            rows = await store.list_members(conn, pid)
        resp.media = MEMBER_READ.dump(rows, many=True)

    async def on_post(self, req: Request, resp: Response, project_id: str) -> None:
        pid = parse_id(project_id, "project_id")
        body = await load_body(req, _create)
        kind, target = rules.member_target(body["user_id"], body["agent_id"])

        async def add(conn: Conn, caller: Caller, now: datetime) -> None:
            await access.project_for_owner(conn, caller, pid, rules.ADD_OWNER_ONLY, lock=True)
            worker: dict[str, Any]
            if kind == "agent":
                found = await workers.get_worker(conn, int(target))
                # Another tenant's worker, human or agent, does not exist here.
                if found is None or found["tenant_id"] != caller.tenant_id:
                    raise NotFound("Agent not found")
                if found["type"] != "agent":
                    raise BadRequest("Worker is not an agent")
                worker = found
            else:
                worker = await self._person_of_tenant(req, conn, caller, str(target))
            member = await store.add_member(conn, pid, worker["id"], "member", now)
            if member is None:
                raise BadRequest("Already a member of this project")
            details = {
                "worker_id": worker["id"],
                "handle": worker["handle"],
                "type": worker["type"],
                "member_id": member["id"],
            }
            await record(conn, caller.author.project_event(pid, "member_added", details, now))
            resp.status = 201
            resp.media = MEMBER_READ.dump(member)

        await idempotent_post(self.deps, req, resp, add)

    async def _person_of_tenant(
        self, req: Request, conn: Conn, caller: Caller, user_id: str
    ) -> dict[str, Any]:
        """The human worker ``user_id`` names, if they belong to the caller's tenant: seen in it
        already, or listed by the SSO as a member of its organisation. Someone TaskFlow knows
        only from other tenants is "User not found" (their name and handle stay there); an id
        TaskFlow has never seen gets a placeholder that reveals nothing ("User <id>")."""
        found = await workers.find_human_in_tenant(conn, user_id, caller.tenant_id)
        if found is None:
            return await create_placeholder_human(conn, user_id, caller.author, self.deps.settings)
        if not found["in_tenant"]:
            members = await organization_members(
                self.deps, req, caller.tenant_id, wait=self.deps.settings.http_timeout
            )
            if user_id not in {member_user_id(m) for m in members}:
                raise NotFound(USER_NOT_FOUND)
        return found


class MemberItem(Resource):
    async def on_delete(
        self,
        req: Request,
        resp: Response,
        project_id: str,
        member_id: str,
    ) -> None:
        pid = parse_id(project_id, "project_id")
        mid = parse_id(member_id, "member_id")
        async with self.deps.writing(req) as (conn, caller):
            await access.project_for_owner(conn, caller, pid, rules.REMOVE_OWNER_ONLY, lock=True)
            member = await store.get_member(conn, pid, mid)
            if member is None:
                raise NotFound("Member not found in this project")
            rules.check_member_removable(member)
            await store.remove_member(conn, mid)
            details = {
                "worker_id": member["worker_id"],
                "handle": member["handle"],
                "member_id": mid,
            }
            event = caller.author.project_event(
                pid, "member_removed", details, self.deps.settings.clock()
            )
            await record(conn, event)
        resp.media = {"ok": True}


class MemberSearch(Resource):
    async def on_get(self, req: Request, resp: Response) -> None:
        query = load_query(req, _search)
        async with self.deps.reading(req) as (conn, caller):
            if query["project_id"] is not None:
                await access.project_for_member(conn, caller, query["project_id"])
            q, project_id, limit = query["q"], query["project_id"], query["limit"]
            rows = await store.search(conn, caller.tenant_id, q, project_id, limit)
        resp.media = {
            "members": [
                {
                    "id": row["handle"],
                    "name": row["name"],
                    "handle": row["handle"],
                    "type": row["type"],
                    "description": rules.search_description(row["type"]),
                }
                for row in rows
            ],
            "total": rows[0]["total"] if rows else 0,
        }


# The operations: what each says beyond its schemas. Unless one says otherwise, an operation
# answers a membership (MemberRead); every one of them is about a project the caller must see
# (404) and belong to (403).
_member = OperationFamily(TAG, response=MemberReadSchema, example=MEMBER_EXAMPLE, errors=(403, 404))
_SEARCH = _member.get(
    "searchMembers",
    "Search members",
    "For @mention autocomplete, within your tenant: its agents and the humans of its projects "
    "(or of one project you belong to). Humans first, then by name, then id. `total` counts all "
    "matches.",
    response=MemberSearchResultSchema,
    query=MemberSearchQuerySchema,
    example={
        "members": [
            {
                "id": "@alice",
                "name": "Alice",
                "handle": "@alice",
                "type": "human",
                "description": "Team Member",
            }
        ],
        "total": 1,
    },
)
_LIST = _member.get(
    "listProjectMembers",
    "List project members",
    "Humans and agents in join order (owner first), id tiebreaker.",
    many=True,
)
_ADD = _member.post(
    "addProjectMember",
    "Add a project member",
    "Owner only. `user_id` adds a person of your organisation: one who has used TaskFlow in "
    "this tenant, one the SSO lists as a member of your organisation (asked with your "
    "credentials; 502 when it cannot be reached), or an id TaskFlow has never seen (a "
    "placeholder worker `User <id>` is created). Someone known only in other tenants is 404 "
    "`User not found`. `agent_id` adds an agent of your tenant (404 `Agent not found` for "
    "another tenant's worker).",
    status=201,
    request=MemberCreateSchema,
    errors=(400, 403, 404, 502),
    headers=(IDEMPOTENCY_HEADER,),
    creates="member_id",
)
_REMOVE = _member.delete(
    "removeProjectMember",
    "Remove a project member",
    "Owner only; `member_id` is the membership id. The owner cannot be removed.",
    response=OkSchema,
    errors=(400, 403, 404),
    example={"ok": True},
)


def member_routes(deps: TasksDeps) -> list[Route]:
    return [
        Route("/api/members/search", MemberSearch(deps), (_SEARCH,)),
        Route("/api/projects/{project_id}/members", MemberCollection(deps), (_LIST, _ADD)),
        Route("/api/projects/{project_id}/members/{member_id}", MemberItem(deps), (_REMOVE,)),
    ]
