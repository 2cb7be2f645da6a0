"""Pure rules of webhook deliveries: the CloudEvents 1.0 body, the Standard Webhooks signature,
the retry schedule, and which addresses a delivery may never reach (SSRF)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import random
import secrets
from datetime import datetime
from typing import Any

from ..events.rules import EVENT_TYPES, Event

SECRET_PREFIX = "whsec_"
SOURCE = "taskflow-tasks"
CONTENT_TYPE = "application/cloudevents+json"
ALL_EVENTS = tuple(EVENT_TYPES)

# Cloud metadata services, reachable from inside most clouds (some are not "private").
METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: not public either


def new_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes (the Standard Webhooks secret format)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` with the secret's key."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, message_id: str, now: datetime, body: bytes) -> dict[str, str]:
    timestamp = int(now.timestamp())
    return {
        "content-type": CONTENT_TYPE,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
        "user-agent": "TaskFlow-Webhooks/1",
    }


def cloudevent(event: Event) -> dict[str, Any]:
    """The delivery body: a CloudEvents 1.0 structured-mode JSON event."""
    subject = f"tasks/{event.task_id}" if event.task_id is not None else None
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": event.id,
        "source": f"/projects/{event.project_id}" if event.project_id else f"/{SOURCE}",
        "type": event.type,
        "time": event.time,
        "datacontenttype": "application/json",
        "data": event.data,
    }
    if subject:
        body["subject"] = subject
    return body


def order_key(event: Event) -> str:
    """Deliveries of one key reach an endpoint in order: one task's events."""
    return f"task:{event.task_id}" if event.task_id is not None else f"event:{event.id}"


def backoff(attempts: int, base: float, cap: float) -> float:
    """Seconds before attempt ``attempts + 1``: exponential from ``base``, capped, with full
    jitter in its upper half (so endpoints that failed together do not retry together)."""
    delay = min(cap, base * 2 ** min(max(attempts - 1, 0), 30))
    return delay * random.uniform(0.5, 1.0)


def address_refusal(address: str) -> str | None:
    """Why a delivery may not reach ``address`` (loopback, private, link-local, metadata...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private or (isinstance(ip, ipaddress.IPv4Address) and ip in SHARED):
        return "a private address"
    if ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return "a reserved address"
    return None
