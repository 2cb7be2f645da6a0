"""Settings of events and webhooks, read from the environment (documented in the README's
"Events and webhooks" section)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


def _bool(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class EventSettings:
    # The notification service (its Dapr subscription routes, without Dapr), or a Dapr sidecar.
    notify_url: str | None = None
    dapr_http_endpoint: str | None = None
    dapr_pubsub_name: str = "taskflow-pubsub"
    # How often consumers look for new outbox rows (the relay's wake-up may shorten it later).
    poll_interval: float = 1.0
    publish_timeout: float = 5.0
    # Webhooks
    webhook_allow_private: bool = False
    webhook_timeout: float = 10.0
    webhook_backoff_base: float = 30.0
    webhook_backoff_max: float = 3600.0
    webhook_disable_after_days: float = 3.0
    webhook_concurrency: int = 48

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EventSettings:
        e = os.environ if env is None else env
        d = cls()
        return cls(
            notify_url=(e.get("EVENTS_NOTIFY_URL") or "").rstrip("/") or None,
            dapr_http_endpoint=(e.get("DAPR_HTTP_ENDPOINT") or "").rstrip("/") or None,
            dapr_pubsub_name=e.get("DAPR_PUBSUB_NAME") or d.dapr_pubsub_name,
            poll_interval=max(0.05, float(e.get("EVENTS_POLL_INTERVAL", d.poll_interval))),
            publish_timeout=float(e.get("EVENTS_PUBLISH_TIMEOUT", d.publish_timeout)),
            webhook_allow_private=_bool(e.get("WEBHOOK_ALLOW_PRIVATE")),
            webhook_timeout=float(e.get("WEBHOOK_TIMEOUT", d.webhook_timeout)),
            webhook_backoff_base=float(e.get("WEBHOOK_BACKOFF_BASE", d.webhook_backoff_base)),
            webhook_backoff_max=float(e.get("WEBHOOK_BACKOFF_MAX", d.webhook_backoff_max)),
            webhook_disable_after_days=float(
                e.get("WEBHOOK_DISABLE_AFTER_DAYS", d.webhook_disable_after_days)
            ),
            webhook_concurrency=max(1, int(e.get("WEBHOOK_CONCURRENCY", d.webhook_concurrency))),
        )
