"""Agents: ``/api/workers/agents[/{agent_id}]`` (reference §1.4), owned by the tenant that
registered them: any worker of that tenant may manage them; other tenants see 404."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import falcon
import falcon.asgi
import psycopg
from taskflow_core.errors import BadRequest, Conflict, NotFound
from taskflow_core.routing import Operation, Route
from taskflow_core.schemas import OkSchema, load_body, load_query, parse_id

from ..callers.caller import Caller
from ..deps import TasksDeps
from ..outbox.events import record
from ..writes.diff import field_changes
from ..writes.idempotency import idempotent_post
from . import rules, store
from .schemas import (
    WORKER_READ,
    AgentCreateSchema,
    AgentListQuerySchema,
    AgentUpdateSchema,
    WorkerReadSchema,
)

Conn = psycopg.AsyncConnection[Any]
TAG = "agents"
AGENT_EXAMPLE = {
    "id": 12,
    "handle": "@claude-coder",
    "name": "Claude Coder",
    "type": "agent",
    "user_id": None,
    "agent_type": "claude",
    "capabilities": ["python", "review"],
    "created_at": "2025-12-10T08:15:30+00:00",
}

_page = AgentListQuerySchema()
_create = AgentCreateSchema()
_update = AgentUpdateSchema()


def _agent_of_tenant(worker: dict[str, Any] | None, caller: Caller) -> dict[str, Any]:
    """404 "Agent not found" when missing or another tenant's, 404 "Not an agent" for a human."""
    if worker is None:
        raise NotFound("Agent not found")
    if worker["type"] != "agent":
        raise NotFound("Not an agent")
    if worker["tenant_id"] != caller.tenant_id:
        raise NotFound("Agent not found")
    return worker


class AgentCollection:
    def __init__(self, deps: TasksDeps) -> None:
        self.deps = deps

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        page = load_query(req, _page)
        async with self.deps.reading(req) as (conn, caller):
            rows = await store.list_agents(conn, caller.tenant_id, page["limit"], page["offset"])
        resp.media = WORKER_READ.dump(rows, many=True)

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = await load_body(req, _create)

        async def register(conn: Conn, caller: Caller, now: datetime) -> None:
            agent = await store.insert_worker(
                conn,
                handle=body["handle"],
                name=body["name"],
                type="agent",
                tenant_id=caller.tenant_id,
                agent_type=body["agent_type"],
                capabilities=body["capabilities"],
                now=now,
            )
            if agent is None:
                raise BadRequest(f"Handle '{body['handle']}' already exists")
            details = {
                "handle": agent["handle"],
                "name": agent["name"],
                "agent_type": agent["agent_type"],
                "capabilities": agent["capabilities"],
            }
            await record(conn, caller.author.worker_event(agent["id"], "created", details, now))
            resp.status = 201
            resp.media = WORKER_READ.dump(agent)
            resp.set_header("Location", f"/api/workers/agents/{agent['id']}")

        await idempotent_post(self.deps, req, resp, register)


class AgentItem:
    def __init__(self, deps: TasksDeps) -> None:
        self.deps = deps

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, agent_id: str
    ) -> None:
        aid = parse_id(agent_id, "agent_id")
        async with self.deps.reading(req) as (conn, caller):
            agent = _agent_of_tenant(await store.get_worker(conn, aid), caller)
        resp.media = WORKER_READ.dump(agent)

    async def on_put(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, agent_id: str
    ) -> None:
        aid = parse_id(agent_id, "agent_id")
        body = await load_body(req, _update)
        async with self.deps.writing(req) as (conn, caller):
            agent = _agent_of_tenant(await store.get_worker(conn, aid, lock=True), caller)
            changes = field_changes(agent, body)
            if changes:
                now = self.deps.settings.clock()
                agent = await store.update_agent(
                    conn, aid, {k: v["after"] for k, v in changes.items()}, now
                )
                await record(conn, caller.author.worker_event(aid, "updated", changes, now))
        resp.media = WORKER_READ.dump(agent)

    async def on_delete(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, agent_id: str
    ) -> None:
        aid = parse_id(agent_id, "agent_id")
        try:
            async with self.deps.writing(req) as (conn, caller):
                agent = _agent_of_tenant(await store.get_worker(conn, aid, lock=True), caller)
                refs = await store.agent_references(conn, aid)
                rules.check_agent_deletable(refs["memberships"], refs["tasks"])
                await store.delete_agent(conn, aid)
                details = {"handle": agent["handle"], "agent_type": agent["agent_type"]}
                now = self.deps.settings.clock()
                await record(conn, caller.author.worker_event(aid, "deleted", details, now))
        except psycopg.errors.ForeignKeyViolation as exc:
            # Something started referencing the agent between the check and the delete.
            raise Conflict("Agent is still referenced; remove those references first") from exc
        self.deps.provisioner.forget_worker(aid)
        resp.media = {"ok": True}


def agent_routes(deps: TasksDeps) -> list[Route]:
    not_found = (404,)
    return [
        Route(
            "/api/workers/agents",
            AgentCollection(deps),
            (
                Operation(
                    "GET",
                    "List agents",
                    TAG,
                    operation_id="listAgents",
                    response=WorkerReadSchema,
                    many=True,
                    query=AgentListQuerySchema,
                    example=AGENT_EXAMPLE,
                    description="Agents of your tenant, newest first (id tiebreaker).",
                ),
                Operation(
                    "POST",
                    "Register an agent",
                    TAG,
                    operation_id="registerAgent",
                    response=WorkerReadSchema,
                    status=201,
                    request=AgentCreateSchema,
                    errors=(400,),
                    example=AGENT_EXAMPLE,
                    headers=("Idempotency-Key",),
                    description="The agent belongs to your tenant. Handles are unique "
                    "across TaskFlow (400 when taken).",
                ),
            ),
        ),
        Route(
            "/api/workers/agents/{agent_id}",
            AgentItem(deps),
            (
                Operation(
                    "GET",
                    "Get an agent",
                    TAG,
                    operation_id="getAgent",
                    response=WorkerReadSchema,
                    errors=not_found,
                    example=AGENT_EXAMPLE,
                ),
                Operation(
                    "PUT",
                    "Update an agent",
                    TAG,
                    operation_id="updateAgent",
                    response=WorkerReadSchema,
                    request=AgentUpdateSchema,
                    errors=not_found,
                    example=AGENT_EXAMPLE,
                    description="Absent or null fields are unchanged.",
                ),
                Operation(
                    "DELETE",
                    "Delete an agent",
                    TAG,
                    operation_id="deleteAgent",
                    response=OkSchema,
                    errors=(400, 404, 409),
                    example={"ok": True},
                    description="400 while it is a member of a project; 409 while tasks name "
                    "it as assignee or creator.",
                ),
            ),
        ),
    ]
