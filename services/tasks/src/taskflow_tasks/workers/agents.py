"""Agents: ``/api/workers/agents[/{agent_id}]`` (reference §1.4), owned by the tenant that
registered them: any worker of that tenant may manage them; other tenants see 404."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from falcon.asgi import Request, Response
from taskflow_core.errors import BadRequest, Conflict, NotFound
from taskflow_core.routing import OperationFamily, Route
from taskflow_core.schemas import OkSchema, load_body, load_query, parse_id

from ..callers.caller import Caller
from ..deps import Resource, TasksDeps, answer_created
from ..outbox.events import record, record_all
from ..writes.diff import field_changes
from ..writes.idempotency import IDEMPOTENCY_HEADER, idempotent_post
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


def _unassigned_details(agent_id: int) -> dict[str, Any]:
    """The ``assigned`` event of a task left unassigned because its agent was deleted."""
    return {"before": agent_id, "after": None, "assignee_handle": None, "reason": "agent_deleted"}


def _agent_of_tenant(worker: dict[str, Any] | None, caller: Caller) -> dict[str, Any]:
    """404 "Agent not found" when missing or another tenant's, 404 "Not an agent" for a human."""
    if worker is None:
        raise NotFound("Agent not found")
    if worker["type"] != "agent":
        raise NotFound("Not an agent")
    if worker["tenant_id"] != caller.tenant_id:
        raise NotFound("Agent not found")
    return worker


class AgentCollection(Resource):
    async def on_get(self, req: Request, resp: Response) -> None:
        page = load_query(req, _page)
        async with self.deps.reading(req) as (conn, caller):
            rows = await store.list_agents(conn, caller.tenant_id, page["limit"], page["offset"])
        resp.media = WORKER_READ.dump(rows, many=True)

    async def on_post(self, req: Request, resp: Response) -> None:
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
            answer_created(resp, WORKER_READ.dump(agent), f"/api/workers/agents/{agent['id']}")

        await idempotent_post(self.deps, req, resp, register)


class AgentItem(Resource):
    async def on_get(self, req: Request, resp: Response, agent_id: str) -> None:
        aid = parse_id(agent_id, "agent_id")
        async with self.deps.reading(req) as (conn, caller):
            agent = _agent_of_tenant(await store.get_worker(conn, aid), caller)
        resp.media = WORKER_READ.dump(agent)

    async def on_put(self, req: Request, resp: Response, agent_id: str) -> None:
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

    async def on_delete(self, req: Request, resp: Response, agent_id: str) -> None:
        aid = parse_id(agent_id, "agent_id")
        try:
            async with self.deps.writing(req) as (conn, caller):
                agent = _agent_of_tenant(await store.get_worker(conn, aid, lock=True), caller)
                refs = await store.agent_references(conn, aid)
                rules.check_agent_deletable(refs["memberships"], refs["created_tasks"])
                now = self.deps.settings.clock()
                unassigned = await store.unassign(conn, aid, now)
                author = caller.author
                await record_all(
                    conn,
                    [
                        author.task_event(task, "assigned", _unassigned_details(aid), now)
                        for task in unassigned
                    ],
                )
                await store.delete_agent(conn, aid)
                details = {"handle": agent["handle"], "agent_type": agent["agent_type"]}
                await record(conn, author.worker_event(aid, "deleted", details, now))
        except psycopg.errors.ForeignKeyViolation as exc:
            # Something started referencing the agent between the check and the delete.
            raise Conflict("Agent is still referenced; remove those references first") from exc
        self.deps.provisioner.forget_worker(aid)
        resp.media = {"ok": True}


# The operations: what each says beyond its schemas. Unless one says otherwise, an operation
# answers an agent (WorkerRead).
_agent = OperationFamily(TAG, response=WorkerReadSchema, example=AGENT_EXAMPLE)
_LIST = _agent.get(
    "listAgents",
    "List agents",
    "Agents of your tenant, newest first (id tiebreaker).",
    many=True,
    query=AgentListQuerySchema,
)
_REGISTER = _agent.post(
    "registerAgent",
    "Register an agent",
    "The agent belongs to your tenant. Handles are unique across TaskFlow (400 when taken).",
    status=201,
    request=AgentCreateSchema,
    errors=(400,),
    headers=(IDEMPOTENCY_HEADER,),
    creates="agent_id",
)
_GET = _agent.get("getAgent", "Get an agent", errors=(404,))
_UPDATE = _agent.put(
    "updateAgent",
    "Update an agent",
    "Absent or null fields are unchanged.",
    request=AgentUpdateSchema,
    errors=(404,),
)
_DELETE = _agent.delete(
    "deleteAgent",
    "Delete an agent",
    "400 while it is a member of a project; 409 while it is the creator of tasks (their"
    " history names it). Tasks assigned to it are left unassigned, each with an `assigned`"
    " audit event (`after: null`, `reason: agent_deleted`).",
    response=OkSchema,
    example={"ok": True},
    errors=(400, 404, 409),
)


def agent_routes(deps: TasksDeps) -> list[Route]:
    return [
        Route("/api/workers/agents", AgentCollection(deps), (_LIST, _REGISTER)),
        Route("/api/workers/agents/{agent_id}", AgentItem(deps), (_GET, _UPDATE, _DELETE)),
    ]
