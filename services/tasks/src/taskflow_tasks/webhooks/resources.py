"""Webhooks of a project (issue 18): ``/api/projects/{project_id}/webhooks[/{webhook_id}]``,
their deliveries and redelivery. Project owners only (404 outside the tenant, 403 otherwise)."""

from __future__ import annotations

import uuid
from typing import Any

from falcon.asgi import Request, Response
from taskflow_core.errors import NotFound, validation_error
from taskflow_core.routing import OperationFamily, Route
from taskflow_core.schemas import OkSchema, PageQuerySchema, load_body, load_query, parse_id

from ..deps import Resource, TasksDeps
from ..events.config import EventSettings
from ..projects import access
from . import rules, store
from .docs import WEBHOOKS
from .schemas import (
    DELIVERY_READ,
    WEBHOOK_CREATED,
    WEBHOOK_READ,
    DeliveryReadSchema,
    WebhookCreatedSchema,
    WebhookCreateSchema,
    WebhookReadSchema,
    WebhookUpdateSchema,
)
from .ssrf import UnsafeURL, check_url

TAG = "webhooks"
OWNER_ONLY = "Only the project owner can manage webhooks"
WEBHOOK_NOT_FOUND = "Webhook not found"
DELIVERY_NOT_FOUND = "Delivery not found"

_create = WebhookCreateSchema()
_update = WebhookUpdateSchema()
_page = PageQuerySchema()


class WebhookResource(Resource):
    def __init__(self, deps: TasksDeps, events: EventSettings) -> None:
        super().__init__(deps)
        self.events = events

    async def check(self, url: str) -> None:
        try:
            await check_url(url, allow_private=self.events.webhook_allow_private)
        except UnsafeURL as exc:
            raise validation_error({"url": [str(exc)]}) from exc


def _delivery(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    if row["state"] != "pending":
        row["next_attempt_at"] = None
    return dict(DELIVERY_READ.dump(row))


def _answer(resp: Response, row: dict[str, Any] | None) -> None:
    """The webhook as read, or 404 when the project has no such webhook."""
    if row is None:
        raise NotFound(WEBHOOK_NOT_FOUND)
    resp.media = WEBHOOK_READ.dump(row)


class WebhookCollection(WebhookResource):
    async def on_get(self, req: Request, resp: Response, project_id: str) -> None:
        pid = parse_id(project_id, "project_id")
        async with self.deps.reading(req) as (conn, caller):
            await access.project_for_owner(conn, caller, pid, OWNER_ONLY)
            rows = await store.list_for(conn, pid)
        resp.media = WEBHOOK_READ.dump(rows, many=True)

    async def on_post(self, req: Request, resp: Response, project_id: str) -> None:
        pid = parse_id(project_id, "project_id")
        body = await load_body(req, _create)
        async with self.deps.writing(req) as (conn, caller):
            await access.project_for_owner(conn, caller, pid, OWNER_ONLY)
            await self.check(body["url"])  # after access: no oracle for outsiders
            values = {
                "project_id": pid,
                "url": body["url"],
                "events": list(dict.fromkeys(body["events"] or rules.ALL_EVENTS)),
                "description": body["description"],
                "secret": rules.new_secret(),
                "created_by_id": caller.worker_id,
                "now": self.deps.settings.clock(),
            }
            row = await store.create(conn, values)
        resp.status = 201
        resp.location = f"/api/projects/{pid}/webhooks/{row['id']}"
        resp.media = WEBHOOK_CREATED.dump(row)


class WebhookItem(WebhookResource):
    async def on_get(self, req: Request, resp: Response, project_id: str, webhook_id: str) -> None:
        pid, wid = parse_id(project_id, "project_id"), parse_id(webhook_id, "webhook_id")
        async with self.deps.reading(req) as (conn, caller):
            await access.project_for_owner(conn, caller, pid, OWNER_ONLY)
            row = await store.get(conn, pid, wid)
        _answer(resp, row)

    async def on_patch(
        self, req: Request, resp: Response, project_id: str, webhook_id: str
    ) -> None:
        pid, wid = parse_id(project_id, "project_id"), parse_id(webhook_id, "webhook_id")
        changes = await load_body(req, _update)
        if "events" in changes:
            changes["events"] = list(dict.fromkeys(changes["events"]))
        async with self.deps.writing(req) as (conn, caller):
            await access.project_for_owner(conn, caller, pid, OWNER_ONLY)
            if "url" in changes:
                await self.check(changes["url"])
            if changes:
                row = await store.update(conn, pid, wid, changes, self.deps.settings.clock())
            else:
                row = await store.get(conn, pid, wid)
        _answer(resp, row)

    async def on_delete(
        self, req: Request, resp: Response, project_id: str, webhook_id: str
    ) -> None:
        pid, wid = parse_id(project_id, "project_id"), parse_id(webhook_id, "webhook_id")
        async with self.deps.writing(req) as (conn, caller):
            await access.project_for_owner(conn, caller, pid, OWNER_ONLY)
            if not await store.delete(conn, pid, wid):
                raise NotFound(WEBHOOK_NOT_FOUND)
        resp.media = {"ok": True}


class Deliveries(WebhookResource):
    async def on_get(self, req: Request, resp: Response, project_id: str, webhook_id: str) -> None:
        pid, wid = parse_id(project_id, "project_id"), parse_id(webhook_id, "webhook_id")
        page = load_query(req, _page)
        async with self.deps.reading(req) as (conn, caller):
            await access.project_for_owner(conn, caller, pid, OWNER_ONLY)
            if await store.get(conn, pid, wid) is None:
                raise NotFound(WEBHOOK_NOT_FOUND)
            rows = await store.list_deliveries(conn, wid, page["limit"], page["offset"])
        resp.media = [_delivery(row) for row in rows]


class Redeliver(WebhookResource):
    async def on_post(
        self, req: Request, resp: Response, project_id: str, webhook_id: str, delivery_id: str
    ) -> None:
        pid, wid = parse_id(project_id, "project_id"), parse_id(webhook_id, "webhook_id")
        did = parse_id(delivery_id, "delivery_id")
        async with self.deps.writing(req) as (conn, caller):
            await access.project_for_owner(conn, caller, pid, OWNER_ONLY)
            if await store.get(conn, pid, wid) is None:
                raise NotFound(WEBHOOK_NOT_FOUND)
            row = await store.redeliver(conn, wid, did, "msg_" + uuid.uuid4().hex)
        if row is None:
            raise NotFound(DELIVERY_NOT_FOUND)
        resp.status = 202
        resp.media = _delivery(row)


_hook = OperationFamily(TAG, response=WebhookReadSchema, errors=(403, 404))
_LIST = _hook.get("listWebhooks", "List a project's webhooks", "Owner only.", many=True)
_CREATE = _hook.post(
    "createWebhook",
    "Register a webhook",
    "Owner only. Deliveries are CloudEvents 1.0 JSON bodies signed per Standard Webhooks (see "
    "the `webhooks` section of this document). The `secret` is shown in this answer only. 422 "
    "when the URL is not http(s) or resolves to a loopback, private, link-local or metadata "
    "address (allowed with WEBHOOK_ALLOW_PRIVATE=true, for development).",
    status=201,
    request=WebhookCreateSchema,
    response=WebhookCreatedSchema,
    errors=(403, 404, 422),
)
_GET = _hook.get("getWebhook", "Get a webhook", "Owner only.")
_PATCH = _hook.patch(
    "updateWebhook",
    "Change a webhook",
    "Owner only. `active: true` resumes a paused or disabled endpoint; its pending deliveries "
    "are sent again.",
    request=WebhookUpdateSchema,
    errors=(403, 404, 422),
)
_DELETE = _hook.delete("deleteWebhook", "Delete a webhook", "Owner only.", response=OkSchema)
_DELIVERIES = _hook.get(
    "listWebhookDeliveries",
    "List a webhook's deliveries",
    "Owner only. Newest first: the event, attempts, last status code, next attempt.",
    response=DeliveryReadSchema,
    many=True,
    query=PageQuerySchema,
)
_REDELIVER = _hook.post(
    "redeliverWebhookDelivery",
    "Send a delivery again",
    "Owner only. Queues a new delivery of the same event (a new `webhook-id`).",
    status=202,
    response=DeliveryReadSchema,
)


def webhook_routes(deps: TasksDeps, events: EventSettings) -> list[Route]:
    base = "/api/projects/{project_id}/webhooks"
    item = base + "/{webhook_id}"
    return [
        Route(base, WebhookCollection(deps, events), (_LIST, _CREATE), webhooks=WEBHOOKS),
        Route(item, WebhookItem(deps, events), (_GET, _PATCH, _DELETE)),
        Route(item + "/deliveries", Deliveries(deps, events), (_DELIVERIES,)),
        Route(
            item + "/deliveries/{delivery_id}/redeliver",
            Redeliver(deps, events),
            (_REDELIVER,),
        ),
    ]
