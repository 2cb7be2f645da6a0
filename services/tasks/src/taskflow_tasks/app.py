"""`create_app(settings)`: builds the TaskFlow Tasks service from its configuration.

Read it as the service's table of contents: every route table and every background job is
imported by name below, so a reader (or a tool following imports) finds each route's code in
one hop.
"""

from __future__ import annotations

import functools

from taskflow_core.auth import create_authenticator
from taskflow_core.auth.snapshot import KeySetSnapshotStore
from taskflow_core.config import Settings
from taskflow_core.logging import configure_logging
from taskflow_core.service import Lifecycle, ServiceApp, build_app

from . import SCHEMA, SERVICE
from .chat.resources import chat_routes
from .deps import TasksDeps
from .events.config import EventSettings
from .events.metrics import EventsCollector
from .events.notify import notify_work
from .events.reminders import reminder_work
from .internal.resources import internal_routes
from .members.resources import member_routes
from .outbox.relay import outbox_backlog, relay_work
from .outbox.wakeup import OutboxWakeup, WakeOnWrite
from .projects.resources import project_routes
from .recurrence.scheduler import due_date_spawner
from .tasks.routes import task_routes
from .webhooks.delivery import webhook_work
from .webhooks.resources import webhook_routes
from .workers.agents import agent_routes
from .workers.overview import overview_routes
from .writes.purge import idempotency_purge


def create_app(settings: Settings | None = None) -> ServiceApp:
    settings = settings or Settings.from_env()
    events = EventSettings.from_env()
    configure_logging(settings)
    deps = TasksDeps.open(settings, SERVICE)
    pool, http = deps.pool, deps.http
    authenticator = create_authenticator(
        settings, http, service=SERVICE, snapshots=KeySetSnapshotStore(pool, SCHEMA)
    )

    async def close_clients() -> None:
        await authenticator.close()
        await http.aclose()

    # A write answered (a spawn, a reminder sent) wakes this replica's relay and event
    # consumers at once (polling stays the fallback).
    wakeup = OutboxWakeup(enabled=settings.outbox_wakeup)
    lifecycle = Lifecycle(
        pool,
        on_startup=[authenticator.start],
        on_shutdown=[close_clients],
        background=[
            idempotency_purge(deps),
            due_date_spawner(pool, settings, wakeup),
            # The relay makes its own client: it carries the tasks service's credential for
            # the audit service, which the shared client (also used towards the SSO) must not.
            *relay_work(settings, pool, wakeup=wakeup),
            # Events: more consumers of the outbox, each with its own cursor (issue 18).
            notify_work(events, pool, wakeup),
            webhook_work(events, pool, wakeup),
            reminder_work(events, pool, settings.clock, wakeup),
        ],
    )
    app = build_app(
        service=SERVICE,
        title="TaskFlow Tasks",
        settings=settings,
        routes=[
            *project_routes(deps),
            *member_routes(deps),
            *agent_routes(deps),
            *overview_routes(deps),
            *task_routes(deps),
            *webhook_routes(deps, events),
            *internal_routes(deps),
            *chat_routes(),
        ],
        lifecycle=lifecycle,
        middleware=[WakeOnWrite(wakeup)],
        authenticator=authenticator,
        readiness=[functools.partial(outbox_backlog, pool)],
    )
    app.metrics.registry.register(EventsCollector(SERVICE))
    return app
