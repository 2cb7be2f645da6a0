"""Who is calling, as a worker: first-login provisioning, exactly once, with its audit events.

A human's first call in a tenant creates their worker (once, globally: a human worker is keyed
by their SSO ``sub``) and their Default project in that tenant (once per tenant), in one
transaction serialised per ``sub`` by a transaction-scoped advisory lock (PgBouncer-safe: no
session state). Unique indexes back the lock up. An agent is found in the tenant it calls from:
a ``tf_`` API key's by the key id, an agent JWT's by (sub, OAuth client), so two people signing
in through one MCP client are two agents; it is created on its first call there. Agents get no
Default project (a project owner adds them where they should work).

Already-provisioned callers cost one indexed query, and nothing while cached in-process.
Provisioning joins the request's transaction when the request passes its connection (so it is
undone, events included, if the request fails, and is simply done again by the next one).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import psycopg
import psycopg_pool
from taskflow_core.auth.identity import Identity
from taskflow_core.config import Settings
from taskflow_core.db import transaction

from ..outbox.events import Actor, Author, record
from ..projects import store as projects
from ..workers import store as workers
from . import naming
from .caller import AgentKey, Caller, WorkerType, agent_key

Conn = psycopg.AsyncConnection[Any]

DEFAULT_PROJECT_NAME = "Default"
DEFAULT_PROJECT_DESCRIPTION = "Your personal task workspace"
_MAX_INSERT_ATTEMPTS = 20


async def find_agent(conn: Conn, key: AgentKey) -> dict[str, Any] | None:
    if key.api_key_id is not None:
        return await workers.find_api_key_agent(conn, key.tenant_id, key.api_key_id)
    assert key.sub is not None
    return await workers.find_token_agent(conn, key.tenant_id, key.sub, key.client_id)


def _caller(row: dict[str, Any], identity: Identity) -> Caller:
    return Caller(
        worker_id=row["id"],
        handle=row["handle"],
        name=row["name"],
        type=row["type"],
        tenant_id=identity.tenant_id,
        identity=identity,
        default_project_id=row.get("default_project_id"),
    )


async def _lookup(conn: Conn, identity: Identity) -> dict[str, Any] | None:
    """The provisioned worker row, or ``None`` when provisioning has work to do."""
    if identity.actor_type == "agent":
        return await find_agent(conn, agent_key(identity))
    row = await workers.find_human_caller(conn, identity.sub, identity.tenant_id)
    if row is None or row["default_project_id"] is None:
        return None
    return row


async def insert_with_free_handle(conn: Conn, base: str, **columns: Any) -> dict[str, Any]:
    """Insert a worker under ``base`` or its first free ``-N`` variant (retried on races)."""
    for _ in range(_MAX_INSERT_ATTEMPTS):
        taken = await workers.taken_handles(conn, base)
        handle = naming.first_free(base, taken, naming.HANDLE_MAX)
        row = await workers.insert_worker(conn, handle=handle, **columns)
        if row is not None:
            return row
    raise RuntimeError(f"no free handle for {base}")


def human_created(worker: dict[str, Any], user_id: str, **marks: Any) -> dict[str, Any]:
    """The details of a human worker's "created" event; ``marks`` say how it came to be."""
    return {
        "handle": worker["handle"],
        "name": worker["name"],
        "type": "human",
        "user_id": user_id,
        **marks,
    }


async def create_placeholder_human(
    conn: Conn, user_id: str, author: Author, settings: Settings
) -> dict[str, Any]:
    """The human worker of ``user_id``, created as a placeholder (audited) when absent; the
    worker belongs to ``author``'s tenant."""
    await workers.lock_provisioning(conn, user_id)
    existing = await workers.find_human_by_user_id(conn, user_id)
    if existing is not None:
        return existing
    now = settings.clock()
    worker = await insert_with_free_handle(
        conn,
        naming.placeholder_handle_base(user_id),
        name=naming.placeholder_name(user_id),
        type="human",
        tenant_id=author.tenant_id,
        user_id=user_id,
        now=now,
    )
    details = human_created(worker, user_id, placeholder=True)
    await record(conn, author.worker_event(worker["id"], "created", details, now))
    return worker


async def _provision_human(conn: Conn, identity: Identity, settings: Settings) -> dict[str, Any]:
    await workers.lock_provisioning(conn, identity.sub)
    row = await workers.find_human_caller(conn, identity.sub, identity.tenant_id)
    now = settings.clock()
    tenant = identity.tenant_id
    if row is None:
        row = await _claim_imported_human(conn, identity, now)
    if row is None:
        worker = await insert_with_free_handle(
            conn,
            naming.human_handle_base(identity.email, identity.sub),
            name=naming.human_name(identity.name, identity.email, identity.sub),
            type="human",
            tenant_id=tenant,
            user_id=identity.sub,
            email=identity.email,
            now=now,
        )
        row = {**worker, "default_project_id": None}
        details = human_created(worker, identity.sub, first_login=True)
        event = _self(row, "human", identity).worker_event(worker["id"], "created", details, now)
        await record(conn, event)
    if row["default_project_id"] is None:
        project = await _insert_default_project(conn, row["id"], identity, now)
        row = {**row, "default_project_id": project["id"]}
        details = {
            "slug": project["slug"],
            "name": project["name"],
            "tenant_id": tenant,
            "is_default": True,
            "first_login": True,
        }
        event = _self(row, "human", identity).project_event(project["id"], "created", details, now)
        await record(conn, event)
    return row


async def _claim_imported_human(conn: Conn, identity: Identity, now: Any) -> dict[str, Any] | None:
    """The CLI human ``taskflow import-cli`` wrote for this person, now bound to their SSO
    subject (tasks and memberships included), or ``None`` when there is none to claim."""
    email = naming.import_claim_email(identity.email, identity.claims.get("email_verified"))
    if email is None:
        return None
    found = await workers.find_claimable_import(conn, identity.tenant_id, email)
    if found is None:
        return None
    worker = await workers.claim_import(conn, found["id"], identity.sub, email, now)
    if worker is None:  # claimed by another login meanwhile
        return None
    row = await workers.find_human_caller(conn, identity.sub, identity.tenant_id)
    assert row is not None
    details = {
        "handle": worker["handle"],
        "user_id": identity.sub,
        "imported_from": "cli",
        "matched_by": "email",
        "first_login": True,
    }
    event = _self(row, "human", identity).worker_event(worker["id"], "claimed", details, now)
    await record(conn, event)
    return row


async def _insert_default_project(
    conn: Conn, worker_id: int, identity: Identity, now: Any
) -> dict[str, Any]:
    base = naming.default_project_slug(identity.sub)
    for _ in range(_MAX_INSERT_ATTEMPTS):
        taken = await projects.taken_slugs(conn, identity.tenant_id, base)
        slug = naming.first_free(base, taken, 100)
        default = projects.NewProject(
            identity.tenant_id,
            slug,
            DEFAULT_PROJECT_NAME,
            DEFAULT_PROJECT_DESCRIPTION,
            identity.sub,
            worker_id,
            is_default=True,
        )
        project = await projects.insert_project(conn, default, now)
        if project is not None:
            return project
    raise RuntimeError(f"no free Default project slug for {base}")


async def _provision_agent(conn: Conn, identity: Identity, settings: Settings) -> dict[str, Any]:
    key = agent_key(identity)
    await workers.lock_provisioning(conn, key.principal)
    row = await find_agent(conn, key)
    if row is not None:
        return row
    now = settings.clock()
    worker = await insert_with_free_handle(
        conn,
        naming.agent_handle_base(identity.client_name, key.label),
        name=(identity.client_name or identity.name or f"Agent {key.label[:8]}")[:200],
        type="agent",
        tenant_id=identity.tenant_id,
        api_key_id=key.api_key_id,
        agent_sub=key.sub,
        agent_client_id=key.client_id,
        agent_type="custom",
        capabilities=[],
        now=now,
    )
    details = {
        "handle": worker["handle"],
        "agent_type": "custom",
        "capabilities": [],
        **(
            {"api_key_id": key.api_key_id}
            if key.api_key_id is not None
            else {"sub": key.sub, "client_id": key.client_id}
        ),
        "first_login": True,
    }
    event = _self(worker, "agent", identity).worker_event(worker["id"], "created", details, now)
    await record(conn, event)
    return {**worker, "default_project_id": None}


def _self(row: dict[str, Any], type: WorkerType, identity: Identity) -> Author:
    """A worker provisioning itself: the author of its own first events."""
    actor = Actor(row["id"], row["handle"], type, identity.client_id, identity.client_name)
    return Author(identity.tenant_id, actor)


async def ensure_caller(
    db: Conn | psycopg_pool.AsyncConnectionPool, identity: Identity, settings: Settings
) -> Caller:
    """The caller's worker, provisioning it (and a human's Default project) on first use.

    With a pool, provisioning commits in its own transaction; with a connection, it joins the
    caller's transaction (the caller commits)."""
    if isinstance(db, psycopg_pool.AsyncConnectionPool):
        async with db.connection() as conn:
            row = await _lookup(conn, identity)
        if row is None:
            async with transaction(db) as conn:
                row = await _provision(conn, identity, settings)
        return _caller(row, identity)
    row = await _lookup(db, identity)
    if row is None:
        row = await _provision(db, identity, settings)
    return _caller(row, identity)


async def _provision(conn: Conn, identity: Identity, settings: Settings) -> dict[str, Any]:
    if identity.actor_type == "agent":
        return await _provision_agent(conn, identity, settings)
    return await _provision_human(conn, identity, settings)


class Provisioner:
    """``ensure_caller`` with a short in-process cache keyed by (principal, tenant).

    A cached caller costs no query; a miss costs one indexed lookup. Only callers found
    already committed are cached: when ``conn`` is given and provisioning is needed, it runs on
    that connection inside the request's transaction (no second pool connection is taken, so
    a burst of first logins cannot exhaust the pool) and commits or rolls back with the request;
    a later request then finds the rows and caches them.
    """

    def __init__(
        self, pool: psycopg_pool.AsyncConnectionPool, settings: Settings, ttl: float = 30.0
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.ttl = ttl
        self._cache: dict[tuple[str, str, str], tuple[float, Caller]] = {}

    def _key(self, identity: Identity) -> tuple[str, str, str]:
        if identity.actor_type == "agent":
            return ("agent", agent_key(identity).principal, identity.tenant_id)
        return ("human", identity.sub, identity.tenant_id)

    async def caller(self, identity: Identity, conn: Conn | None = None) -> Caller:
        """The caller; with ``conn`` (inside the request's transaction) no other connection is
        used; without it, provisioning commits on its own transaction."""
        key = self._key(identity)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            # The authenticator hands out the same Identity for a token it verified moments
            # ago: then the cached Caller is already the right one, no copy needed.
            cached = hit[1]
            return cached if cached.identity is identity else replace(cached, identity=identity)
        if conn is None:
            caller = await ensure_caller(self.pool, identity, self.settings)
        else:
            row = await _lookup(conn, identity)
            if row is None:
                # Not cached: it commits only if the request does.
                return _caller(await _provision(conn, identity, self.settings), identity)
            caller = _caller(row, identity)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + self.ttl, caller)
        return caller

    def forget_worker(self, worker_id: int) -> None:
        """Drop cached callers of a deleted worker (this process; others expire by TTL)."""
        for key, (_, caller) in list(self._cache.items()):
            if caller.worker_id == worker_id:
                self._cache.pop(key, None)
