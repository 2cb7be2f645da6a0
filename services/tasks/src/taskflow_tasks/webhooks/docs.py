"""The delivery format as an OpenAPI 3.1 ``webhooks`` entry: what a registered endpoint
receives (a CloudEvents 1.0 JSON body signed per Standard Webhooks)."""

from __future__ import annotations

from typing import Any

from ..events.rules import EVENT_TYPES

_HEADERS = (
    ("webhook-id", "Message id: the same on every retry of a delivery (deduplicate on it)"),
    ("webhook-timestamp", "Unix seconds when this attempt was signed"),
    (
        "webhook-signature",
        "`v1,<base64 HMAC-SHA256>` of `{webhook-id}.{webhook-timestamp}.{body}` with the "
        "webhook's secret (base64 after `whsec_`); verify with any Standard Webhooks library",
    ),
)

CLOUDEVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["specversion", "id", "source", "type", "time", "data"],
    "properties": {
        "specversion": {"const": "1.0"},
        "id": {"type": "string", "description": "Event id: the same for every endpoint"},
        "source": {"type": "string", "examples": ["/projects/42"]},
        "type": {"enum": list(EVENT_TYPES)},
        "subject": {"type": "string", "examples": ["tasks/7"]},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"const": "application/json"},
        "data": {
            "type": "object",
            "description": "The reference's payload of the event type (task_id, user_id, "
            "actor_id, actor_name, and task / changes / title as the type has them)",
        },
    },
}

EXAMPLE = {
    "specversion": "1.0",
    "id": "5b0c3c0e-3f6e-5a43-9d1f-2f1f3a9b7c11",
    "source": "/projects/42",
    "type": "task.assigned",
    "subject": "tasks/7",
    "time": "2026-12-04T22:40:00+00:00",
    "datacontenttype": "application/json",
    "data": {
        "task_id": 7,
        "task_title": "Write the report",
        "user_id": "sso-user-bob",
        "actor_id": "sso-user-alice",
        "actor_name": "Alice",
        "project_id": 42,
    },
}

TASK_EVENT_WEBHOOK: dict[str, Any] = {
    "post": {
        "summary": "A task event or reminder, delivered to a registered webhook",
        "description": "Sent to each active webhook of the project subscribed to the event's "
        "type, in order per task, at least once: retried with exponential backoff and jitter "
        "until a 2xx (for days; an endpoint failing for WEBHOOK_DISABLE_AFTER_DAYS is "
        "disabled). 10 s timeout; redirects are not followed; 410 disables the endpoint.",
        "tags": ["webhooks"],
        "parameters": [
            {
                "name": name,
                "in": "header",
                "required": True,
                "description": text,
                "schema": {"type": "string"},
            }
            for name, text in _HEADERS
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/cloudevents+json": {"schema": CLOUDEVENT_SCHEMA, "example": EXAMPLE}
            },
        },
        "responses": {
            "2XX": {"description": "Delivered"},
            "410": {"description": "Gone: the webhook is disabled, nothing more is sent"},
            "default": {"description": "Failed: retried later with the same webhook-id"},
        },
    }
}

WEBHOOKS = {"taskEvent": TASK_EVENT_WEBHOOK}
