"""`create_app(settings)`: builds the TaskFlow Audit service from its configuration."""

from __future__ import annotations

from typing import Any

from taskflow_core.auth import create_authenticator, service_credentials_hook
from taskflow_core.auth.snapshot import KeySetSnapshotStore
from taskflow_core.config import Settings
from taskflow_core.db import create_pool
from taskflow_core.http import create_http_client
from taskflow_core.logging import configure_logging
from taskflow_core.routing import Operation, OperationFamily, Route
from taskflow_core.service import Lifecycle, ReadinessCheck, ServiceApp, build_app

from . import SCHEMA, SERVICE
from .access import TasksDirectory
from .history import AuditHistory
from .resources import (
    AuditSearchResource,
    AuditVerifyResource,
    IngestResource,
    ProjectAuditResource,
    TaskAuditResource,
)
from .schemas import (
    AuditPageQuerySchema,
    AuditReadSchema,
    IngestBatchSchema,
    IngestReplySchema,
    SearchQuerySchema,
    VerifyQuerySchema,
    VerifyReportSchema,
)
from .store import AuditStore

TAG = "audit"
ACCESS_CACHE_SECONDS = 5.0
_READ_ERRORS = (400, 403, 404, 503)
_EXAMPLE = {
    "id": 42,
    "entity_type": "task",
    "entity_id": 7,
    "action": "status_changed",
    "actor_id": 3,
    "actor_handle": "@alice",
    "actor_type": "human",
    "details": {"before": "pending", "after": "in_progress"},
    "created_at": "2026-01-02T03:04:05.123456+00:00",
    "project_id": 2,
    "event_id": "5b7e0c44-7f4e-4f7e-9a55-0d3c6f0f4f11",
}
_PAGING = (
    "Newest first by default (`order=asc`: chronological); ties broken by id. Page with "
    "`limit`/`offset`, or follow the `X-Next-Cursor` header (also a `Link: rel=next`)."
)


# The operations: what each says beyond its schemas. Unless one says otherwise, an operation
# answers a page of entries, newest first.
_entries = OperationFamily(
    TAG, response=AuditReadSchema, many=True, errors=_READ_ERRORS, example=_EXAMPLE
)
_TASK_TRAIL = _entries.get(
    "listTaskAuditEntries",
    "Task audit trail",
    "Also for a deleted task. " + _PAGING,
    query=AuditPageQuerySchema,
)
_PROJECT_TRAIL = _entries.get(
    "listProjectAuditEntries",
    "Project audit trail",
    "The project's own entries and those of all its tasks, deleted ones included; readable "
    "after the project is deleted. " + _PAGING,
    query=AuditPageQuerySchema,
)
_SEARCH = _entries.get(
    "searchAuditEntries",
    "Search the audit trail",
    "Entries of the projects the caller may read (or of `project_id` only) and the "
    "project-less entries of the caller's tenant (agents, workers). `since` is inclusive, "
    "`until` exclusive. " + _PAGING,
    query=SearchQuerySchema,
)
_VERIFY = _entries.get(
    "verifyProjectAuditChain",
    "Verify a project's audit chain",
    "Project owners only. Recomputes the hash of every entry of the project and checks each "
    "link to its neighbours in the chain; reports the first broken one.",
    response=VerifyReportSchema,
    many=False,
    query=VerifyQuerySchema,
    example=None,
)
_INGEST = Operation(
    "POST",
    "Ingest a batch of audit events",
    TAG,
    operation_id="ingestAuditEvents",
    request=IngestBatchSchema,
    response=IngestReplySchema,
    errors=(403,),
)


def audit_routes(history: AuditHistory) -> list[Route]:
    return [
        Route("/api/tasks/{task_id}/audit", TaskAuditResource(history), (_TASK_TRAIL,)),
        Route("/api/projects/{project_id}/audit", ProjectAuditResource(history), (_PROJECT_TRAIL,)),
        Route("/api/audit", AuditSearchResource(history), (_SEARCH,)),
        Route("/api/audit/verify", AuditVerifyResource(history), (_VERIFY,)),
        Route("/internal/audit/events", IngestResource(history), (_INGEST,), internal=True),
    ]


def create_app(settings: Settings | None = None) -> ServiceApp:
    settings = settings or Settings.from_env()
    configure_logging(settings)
    pool = create_pool(settings, f"taskflow-{SERVICE}")
    auth_http = create_http_client(timeout=settings.http_timeout)
    authenticator = create_authenticator(
        settings, auth_http, service=SERVICE, snapshots=KeySetSnapshotStore(pool, SCHEMA)
    )
    # The one client to the tasks service (access checks), with the audit service's credential.
    tasks_http = create_http_client(
        timeout=settings.http_timeout,
        base_url=settings.tasks_url,
        credentials=service_credentials_hook(settings, caller=SERVICE, audience="tasks"),
    )
    store = AuditStore(pool)
    history = AuditHistory(
        store, TasksDirectory(tasks_http, ttl=ACCESS_CACHE_SECONDS), clock=settings.clock
    )

    async def close_clients() -> None:
        await authenticator.close()
        await tasks_http.aclose()
        await auth_http.aclose()

    lifecycle = Lifecycle(pool, on_startup=[authenticator.start], on_shutdown=[close_clients])
    return build_app(
        service=SERVICE,
        title="TaskFlow Audit",
        settings=settings,
        routes=audit_routes(history),
        lifecycle=lifecycle,
        authenticator=authenticator,
        readiness=[_chain_size(store)],
    )


def _chain_size(store: AuditStore) -> ReadinessCheck:
    """How many entries the chain holds (one-row read of the chain head)."""

    async def check() -> dict[str, Any]:
        head = await store.chain_head()
        return {"audit_entries": head.last_id}

    return check
