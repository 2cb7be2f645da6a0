"""`create_app(settings)`: builds the TaskFlow Tasks service from its configuration.

Route table: projects, members, agents and workers (this package's core modules), tasks
(``tasks.task_routes``), internal service-to-service routes (``internal.internal_routes``), and
background work: the outbox relay (``relay.relay_work``) and the expiry of idempotency keys.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
from types import ModuleType

import psycopg_pool
import structlog
from taskflow_core.auth import create_authenticator
from taskflow_core.auth.snapshot import KeySetSnapshotStore
from taskflow_core.config import Settings
from taskflow_core.db import create_pool, transaction
from taskflow_core.http import create_http_client
from taskflow_core.logging import configure_logging
from taskflow_core.routing import Route
from taskflow_core.service import (
    BackgroundWork,
    Lifecycle,
    ReadinessCheck,
    ServiceApp,
    build_app,
)

from . import SCHEMA, SERVICE, store_idempotency
from .deps import TasksDeps
from .provisioning import Provisioner

log = structlog.get_logger("taskflow.tasks")

IDEMPOTENCY_PURGE_INTERVAL = 3600.0


def _optional_module(name: str) -> ModuleType | None:
    """A sibling module another part of the team delivers; ``None`` until it exists."""
    try:
        return importlib.import_module(f"{__package__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.{name}":
            raise
        return None


def core_routes(deps: TasksDeps) -> list[Route]:
    """Projects, members, agents and the workers overview."""
    routes: list[Route] = []
    for name in ("projects", "members", "agents", "workers"):
        module = _optional_module(name)
        if module is not None:
            routes.extend(module.routes(deps))
    return routes


def idempotency_purge(deps: TasksDeps) -> BackgroundWork:
    """Delete idempotency keys older than 24 h, hourly (idempotent: safe on every replica)."""

    async def run() -> None:
        while True:
            async with transaction(deps.pool) as conn:
                removed = await store_idempotency.purge_expired(conn, deps.settings.clock())
            if removed:
                log.info("idempotency_keys_purged", removed=removed)
            await asyncio.sleep(IDEMPOTENCY_PURGE_INTERVAL)

    return BackgroundWork("idempotency-purge", run)


def _team_parts(
    deps: TasksDeps, pool: psycopg_pool.AsyncConnectionPool
) -> tuple[list[Route], list[BackgroundWork], list[ReadinessCheck]]:
    routes: list[Route] = []
    background: list[BackgroundWork] = []
    readiness: list[ReadinessCheck] = []
    tasks = _optional_module("tasks")
    if tasks is not None:
        routes.extend(tasks.task_routes(deps))
        if hasattr(tasks, "background_work"):
            background.extend(tasks.background_work(deps))
    internal = _optional_module("internal")
    if internal is not None:
        routes.extend(internal.internal_routes(deps))
    relay = _optional_module("relay")
    if relay is not None:
        # The relay makes its own client: it carries the tasks service's credential for the
        # audit service, which the shared client (also used towards the SSO) must not send.
        background.append(relay.relay_work(deps.settings, pool))
        readiness.append(functools.partial(relay.outbox_backlog, pool))
    return routes, background, readiness


def create_app(settings: Settings | None = None) -> ServiceApp:
    settings = settings or Settings.from_env()
    configure_logging(settings)
    pool = create_pool(settings, f"taskflow-{SERVICE}")
    http = create_http_client(timeout=settings.http_timeout)
    authenticator = create_authenticator(
        settings, http, service=SERVICE, snapshots=KeySetSnapshotStore(pool, SCHEMA)
    )
    deps = TasksDeps(
        settings=settings, pool=pool, http=http, provisioner=Provisioner(pool, settings)
    )
    team_routes, team_background, team_readiness = _team_parts(deps, pool)

    async def close_clients() -> None:
        await authenticator.close()
        await http.aclose()

    lifecycle = Lifecycle(
        pool,
        on_startup=[authenticator.start],
        on_shutdown=[close_clients],
        background=[idempotency_purge(deps), *team_background],
    )
    return build_app(
        service=SERVICE,
        title="TaskFlow Tasks",
        settings=settings,
        routes=core_routes(deps) + team_routes,
        lifecycle=lifecycle,
        authenticator=authenticator,
        readiness=team_readiness,
    )
