"""The caller of a request as a worker: who they are, in which tenant, and how an agent is told
apart from another."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from falcon.asgi import Request
from taskflow_core.auth.identity import Identity
from taskflow_core.errors import Forbidden, Unauthorized

from ..outbox.events import Actor, Author
from ..workers.store import UNCLAIMED_PREFIX

WorkerType = Literal["human", "agent"]
TENANT_ID_MAX = 100


@dataclass(frozen=True)
class Caller:
    """The caller as a worker, in the tenant of this request."""

    worker_id: int
    handle: str
    name: str
    type: WorkerType
    tenant_id: str
    identity: Identity
    default_project_id: int | None = None

    @property
    def sub(self) -> str:
        return self.identity.sub

    @property
    def actor(self) -> Actor:
        """The audit actor: this worker, its type, and the OAuth client of the request."""
        return Actor(
            worker_id=self.worker_id,
            handle=self.handle,
            actor_type=self.type,
            client_id=self.identity.client_id,
            client_name=self.identity.client_name,
        )

    @property
    def author(self) -> Author:
        """The author of this caller's changes: this worker, in the request's tenant."""
        return Author(self.tenant_id, self.actor)


def identity_of(req: Request) -> Identity:
    """The verified identity the auth middleware put on the request (401 without one)."""
    identity = getattr(req.context, "identity", None)
    if not isinstance(identity, Identity):
        raise Unauthorized("Not authenticated")
    if identity.is_service:
        raise Forbidden("Service credentials cannot act as a worker")
    if len(identity.tenant_id) > TENANT_ID_MAX:
        # The tenant comes from a token claim; refuse it before it reaches a varchar(100).
        raise Unauthorized(
            f"Tenant id longer than {TENANT_ID_MAX} characters", error="invalid_token"
        )
    if identity.actor_type == "human" and identity.sub.startswith(UNCLAIMED_PREFIX):
        # That prefix marks imported humans nobody has claimed; a subject spelled like it
        # would sign in as one of them.
        raise Unauthorized("Subject reserved for imported workers", error="invalid_token")
    return identity


@dataclass(frozen=True)
class AgentKey:
    """What makes an agent caller one worker: its tenant, and either the ``tf_`` key's id or
    the agent token's (sub, OAuth client)."""

    tenant_id: str
    api_key_id: str | None = None
    sub: str | None = None
    client_id: str | None = None

    @property
    def principal(self) -> str:
        """A text naming this agent (advisory lock and cache key)."""
        if self.api_key_id is not None:
            return f"agent-key:{self.tenant_id}:{self.api_key_id}"
        return f"agent-token:{self.tenant_id}:{self.sub}:{self.client_id or ''}"

    @property
    def label(self) -> str:
        """The id its handle and default name derive from."""
        return self.api_key_id or self.client_id or self.sub or "agent"


def agent_key(identity: Identity) -> AgentKey:
    """An API key's agent is the key's; an agent token's is its holder's, per OAuth client."""
    if identity.api_key_id:
        return AgentKey(identity.tenant_id, api_key_id=identity.api_key_id)
    return AgentKey(identity.tenant_id, sub=identity.sub, client_id=identity.client_id)
