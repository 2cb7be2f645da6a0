"""HTTP resources of the audit service: parse the request, call :class:`AuditHistory`, map."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import falcon
import falcon.asgi
from taskflow_core.auth.identity import Identity
from taskflow_core.errors import BadRequest, Forbidden, Unauthorized
from taskflow_core.schemas import load_body, load_query, parse_id

from .access import CallerRef
from .history import AuditHistory, entry_view
from .paging import InvalidCursor, Page, decode_cursor, next_cursor
from .schemas import (
    AuditPageQuerySchema,
    IngestBatchSchema,
    SearchQuerySchema,
    VerifyQuerySchema,
)
from .store import SearchFilters

NEXT_CURSOR_HEADER = "X-Next-Cursor"
# The only service that writes audit events.
INGEST_CALLERS = frozenset({"tasks"})

_PAGE_QUERY = AuditPageQuerySchema()
_SEARCH_QUERY = SearchQuerySchema()
_VERIFY_QUERY = VerifyQuerySchema()
_INGEST_BATCH = IngestBatchSchema()


def _identity(req: falcon.asgi.Request) -> Identity:
    identity = getattr(req.context, "identity", None)
    if not isinstance(identity, Identity):
        raise Unauthorized("Not authenticated")
    return identity


def _caller(req: falcon.asgi.Request) -> CallerRef:
    return CallerRef.of(_identity(req))


def _page(query: dict[str, Any]) -> Page:
    after = None
    if query.get("cursor"):
        if query["offset"]:
            raise BadRequest("Use either cursor or offset, not both")
        try:
            after = decode_cursor(query["cursor"], query["order"])
        except InvalidCursor as exc:
            raise BadRequest(f"Invalid cursor: {exc}") from exc
    return Page(limit=query["limit"], offset=query["offset"], order=query["order"], after=after)


def _respond_page(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, page: Page, rows: list[dict]
) -> None:
    """A bare JSON array (as the reference), the next page's cursor in headers."""
    resp.media = [entry_view(row) for row in rows]
    cursor = next_cursor(page, rows)
    if cursor is not None:
        resp.set_header(NEXT_CURSOR_HEADER, cursor)
        params = {k: v for k, v in req.params.items() if k not in {"cursor", "offset"}}
        params["cursor"] = cursor
        resp.append_link(f"{req.path}?{urlencode(params, doseq=True)}", "next")


class TaskAuditResource:
    """GET /api/tasks/{task_id}/audit: a task's entries, also after the task was deleted."""

    def __init__(self, history: AuditHistory) -> None:
        self.history = history

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str
    ) -> None:
        page = _page(load_query(req, _PAGE_QUERY))
        rows = await self.history.task_history(_caller(req), parse_id(task_id, "task_id"), page)
        _respond_page(req, resp, page, rows)


class ProjectAuditResource:
    """GET /api/projects/{project_id}/audit: every entry of the project, deleted tasks' too."""

    def __init__(self, history: AuditHistory) -> None:
        self.history = history

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str
    ) -> None:
        page = _page(load_query(req, _PAGE_QUERY))
        pid = parse_id(project_id, "project_id")
        rows = await self.history.project_history(_caller(req), pid, page)
        _respond_page(req, resp, page, rows)


class AuditSearchResource:
    """GET /api/audit: filtered entries of the projects the caller may read."""

    def __init__(self, history: AuditHistory) -> None:
        self.history = history

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        query = load_query(req, _SEARCH_QUERY)
        page = _page(query)
        if query["since"] and query["until"] and query["until"] <= query["since"]:
            raise BadRequest("until must be after since")
        filters = SearchFilters(
            actor_id=query["actor_id"],
            entity_type=query["entity_type"],
            action=query["action"],
            since=query["since"],
            until=query["until"],
        )
        rows = await self.history.search(_caller(req), query["project_id"], filters, page)
        _respond_page(req, resp, page, rows)


class AuditVerifyResource:
    """GET /api/audit/verify?project_id=: recompute the project's links of the hash chain."""

    def __init__(self, history: AuditHistory) -> None:
        self.history = history

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        project_id = load_query(req, _VERIFY_QUERY)["project_id"]
        report = await self.history.verify_project(_caller(req), project_id)
        resp.media = {"project_id": project_id, **report.as_dict()}


class IngestResource:
    """POST /internal/audit/events: a batch from the tasks service's outbox relay."""

    def __init__(self, history: AuditHistory) -> None:
        self.history = history

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        identity = _identity(req)
        if not identity.is_service or identity.client_id not in INGEST_CALLERS:
            raise Forbidden("Only the tasks service may write audit events")
        batch = await load_body(req, _INGEST_BATCH)
        outcome = await self.history.ingest(batch["events"])
        resp.media = outcome.as_dict()
