"""Request and response shapes of project webhooks and their deliveries."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import fields, validate
from taskflow_core.schemas import StrictBoolean, StrictSchema, UTCDateTime

from .rules import ALL_EVENTS

URL_MAX = 2000
# What the SSRF guard's form check accepts (ssrf.check_form), said in the OpenAPI document: an
# http(s) URL naming a host by letters, digits, dots and hyphens (no credentials), an optional
# port (0-65535), then a path. Where the host resolves is checked apart
# (422 naming the address).
_PORT = r"([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
URL_PATTERN = r"^https?://[A-Za-z0-9.-]+(:" + _PORT + r")?(/[^\x00]*)?$"
_url_form = validate.Regexp(
    URL_PATTERN,
    error="must be an http or https URL: a host of letters, digits, dots and hyphens, an"
    " optional port, then a path (no credentials)",
)
DESCRIPTION_MAX = 500

_events = fields.List(
    fields.String(validate=validate.OneOf(ALL_EVENTS)),
    validate=validate.Length(min=1, max=len(ALL_EVENTS)),
    metadata={"description": "Event types to receive (default: all)"},
)


class WebhookCreateSchema(StrictSchema):
    # The request-body example of the OpenAPI document (Swagger UI's "Try it out").
    openapi_example: ClassVar[dict[str, Any]] = {
        "url": "https://hooks.example.com/taskflow",
        "events": ["task.created", "task.completed"],
        "description": "Team chat notifications",
    }

    url = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=URL_MAX), _url_form],
        metadata={
            "description": "http(s) URL; 422 when it resolves to a loopback, private, "
            "link-local or metadata address (unless WEBHOOK_ALLOW_PRIVATE=true)"
        },
    )
    events = fields.List(
        fields.String(validate=validate.OneOf(ALL_EVENTS)),
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=len(ALL_EVENTS)),
        metadata={"description": "Event types to receive (default: all)"},
    )
    description = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=DESCRIPTION_MAX)
    )


class WebhookUpdateSchema(StrictSchema):
    openapi_example: ClassVar[dict[str, Any]] = {"active": False}

    url = fields.String(validate=[validate.Length(min=1, max=URL_MAX), _url_form])
    events = _events
    active = StrictBoolean(metadata={"description": "false pauses deliveries; true resumes"})
    description = fields.String(allow_none=True, validate=validate.Length(max=DESCRIPTION_MAX))


class WebhookReadSchema(StrictSchema):
    id = fields.Integer()
    project_id = fields.Integer()
    url = fields.String()
    events = fields.List(fields.String())
    description = fields.String(allow_none=True)
    active = fields.Boolean()
    disabled_reason = fields.String(
        allow_none=True, metadata={"description": "Why deliveries stopped (410, failing too long)"}
    )
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


class WebhookCreatedSchema(WebhookReadSchema):
    secret = fields.String(
        metadata={"description": "whsec_...: verifies signatures; shown only in this answer"}
    )


class DeliveryReadSchema(StrictSchema):
    id = fields.Integer()
    webhook_id = fields.Integer()
    event_id = fields.String(metadata={"description": "The CloudEvent id"})
    event_type = fields.String()
    message_id = fields.String(metadata={"description": "The webhook-id header"})
    state = fields.String(validate=validate.OneOf(("pending", "delivered", "failed")))
    attempts = fields.Integer()
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    next_attempt_at = UTCDateTime(allow_none=True)
    created_at = UTCDateTime()
    delivered_at = UTCDateTime(allow_none=True)


WEBHOOK_READ = WebhookReadSchema()
WEBHOOK_CREATED = WebhookCreatedSchema()
DELIVERY_READ = DeliveryReadSchema()
