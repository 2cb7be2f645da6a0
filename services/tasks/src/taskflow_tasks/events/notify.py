"""The ``notify`` consumer: publishes task events to the notification service.

- ``EVENTS_NOTIFY_URL``: POST to ``{url}/dapr/events/{topic}`` the CloudEvent a Dapr sidecar
  would have delivered (``data`` is the reference's envelope ``{event_type, data, timestamp}``),
  so the existing notification service works without Dapr;
- ``DAPR_HTTP_ENDPOINT``: POST the envelope to the sidecar's publish API
  ``/v1.0/publish/{DAPR_PUBSUB_NAME}/{topic}`` (Dapr wraps it in the CloudEvent itself);
- neither: the cursor simply follows the outbox (nothing is sent, nothing is logged).

At least once, in outbox order: the cursor moves only past what was accepted (or dropped by
the notification service, by Dapr's subscriber contract: ``subscriber_outcome``); a failure keeps
the rest for the next round after a backoff. The cursor is leased (no transaction stays open
across the HTTP calls), so one replica publishes at a time.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import httpx
import psycopg_pool
import structlog
from taskflow_core.db import DATABASE_OUTAGE_ERRORS, transaction
from taskflow_core.service import BackgroundWork

from ..outbox.wakeup import OutboxWakeup
from . import store
from .config import EventSettings
from .metrics import EVENT_METRICS
from .pacing import Pacer
from .rules import Event, events_of

log = structlog.get_logger("taskflow.events")

NAME = "notify"
BATCH = 200
SOURCE = "taskflow-tasks"


def dapr_cloudevent(event: Event, pubsub: str) -> dict[str, Any]:
    """What a Dapr sidecar delivers to a subscriber: a CloudEvent around the envelope."""
    return {
        "specversion": "1.0",
        "id": event.id,
        "source": SOURCE,
        "type": event.type,
        "time": event.time,
        "topic": event.topic,
        "pubsubname": pubsub,
        "datacontenttype": "application/json",
        "data": event.envelope(),
    }


class Publisher:
    def __init__(
        self,
        settings: EventSettings,
        pool: psycopg_pool.AsyncConnectionPool,
        http: httpx.AsyncClient,
        wakeup: OutboxWakeup,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.http = http
        self.pacer = Pacer(wakeup, settings.poll_interval)
        self.lease = timedelta(seconds=max(30.0, 4 * settings.publish_timeout))
        self.failures = 0

    @property
    def enabled(self) -> bool:
        return bool(self.settings.notify_url or self.settings.dapr_http_endpoint)

    async def run_forever(self) -> None:
        while True:
            self.pacer.begin()
            try:
                handled = await self.publish_once()
            except DATABASE_OUTAGE_ERRORS as exc:
                log.warning("events_database_unavailable", error=type(exc).__name__)
                handled = 0
            if handled < BATCH:
                await refresh_pending(self.pool)
                await self.pacer.idle(listening=self.enabled)

    async def publish_once(self) -> int:
        """Publish the next batch; the number of outbox rows handled (0 if none or failed).
        With nowhere to publish, the cursor just follows the outbox."""
        if not self.enabled:
            async with transaction(self.pool) as conn:
                await store.follow(conn, NAME)
            return 0
        async with transaction(self.pool) as conn:
            if not await store.lease(conn, NAME, self.lease):
                return 0
        try:
            return await self._publish_batch()
        finally:
            async with transaction(self.pool) as conn:
                await store.advance(conn, NAME, None, release=True)

    async def _publish_batch(self) -> int:
        async with self.pool.connection() as conn:
            rows = await store.read_after(conn, NAME, BATCH)
            facts = await store.facts_for(conn, [r["payload"] for r in rows])
        done: tuple[int, int] | None = None
        handled = 0
        for row in rows:
            payload = row["payload"]
            fact = facts.get(str(payload.get("event_id")))
            events = events_of(payload, fact) if fact else []
            try:
                for event in events:
                    await self._send(event)
            except PublishFailed as exc:
                await self._save(done)
                await self._back_off(str(exc))
                return 0
            done = (int(row["txid"]), int(row["id"]))
            handled += 1
        await self._save(done)
        self.failures = 0
        return handled

    async def _save(self, done: tuple[int, int] | None) -> None:
        if done is not None:
            async with transaction(self.pool) as conn:
                await store.advance(conn, NAME, done)

    async def _send(self, event: Event) -> None:
        s = self.settings
        if s.notify_url:
            url = f"{s.notify_url}/dapr/events/{event.topic}"
            body = dapr_cloudevent(event, s.dapr_pubsub_name)
            headers = {"content-type": "application/cloudevents+json"}
        else:
            url = f"{s.dapr_http_endpoint}/v1.0/publish/{s.dapr_pubsub_name}/{event.topic}"
            body = event.envelope()
            headers = {"content-type": "application/json"}
        try:
            response = await self.http.post(
                url, json=body, headers=headers, timeout=s.publish_timeout
            )
        except httpx.HTTPError as exc:
            EVENT_METRICS.published(NAME, "error")
            raise PublishFailed(f"{url} unreachable: {type(exc).__name__}") from exc
        outcome = subscriber_outcome(response) if s.notify_url else _publish_outcome(response)
        if outcome == "retry":
            EVENT_METRICS.published(NAME, "error")
            raise PublishFailed(f"{url} answered {response.status_code} {response.text[:200]!r}")
        if outcome == "drop":
            log.warning(
                "events_dropped_by_subscriber",
                event_id=event.id,
                event_type=event.type,
                status=response.status_code,
                body=response.text[:200],
            )
        EVENT_METRICS.published(NAME, "ok" if outcome == "success" else "dropped")

    async def _back_off(self, error: str) -> None:
        self.failures += 1
        delay = min(60.0, self.settings.poll_interval * 2 ** min(self.failures, 10))
        delay *= random.uniform(0.5, 1.0)
        log.warning("events_publish_failed", error=error, retry_in_s=round(delay, 2))
        await asyncio.sleep(delay)


def subscriber_outcome(response: httpx.Response) -> str:
    """What the notification service's answer means, by Dapr's contract for subscribers (which
    it was written to): a 2xx is ``SUCCESS`` unless its body says ``{"status": "RETRY"}`` or
    ``"DROP"``; a 404 drops the event (logged); anything else is retried. So one event the
    service will never take does not hold back the others, when the service says so."""
    status = response.status_code
    if status == 404:
        return "drop"
    if not 200 <= status < 300:
        return "retry"
    try:
        said = response.json().get("status")
    except (ValueError, AttributeError):  # an empty or non-object body: success
        return "success"
    return {"RETRY": "retry", "DROP": "drop"}.get(str(said).upper(), "success")


def _publish_outcome(response: httpx.Response) -> str:
    """The Dapr sidecar's publish API: 2xx (204) published; anything else is retried (a 403 or
    404 is a configuration to fix, and the events wait for it)."""
    return "success" if 200 <= response.status_code < 300 else "retry"


async def refresh_pending(pool: psycopg_pool.AsyncConnectionPool) -> None:
    """Every few seconds: how far behind each consumer is (for ``/metrics``)."""
    if not EVENT_METRICS.pending_due():
        return
    try:
        async with pool.connection() as conn:
            EVENT_METRICS.set_pending(await store.pending(conn))
    except DATABASE_OUTAGE_ERRORS:
        pass


class PublishFailed(Exception):
    """The notification service (or the Dapr sidecar) did not accept an event."""


def notify_work(
    settings: EventSettings, pool: psycopg_pool.AsyncConnectionPool, wakeup: OutboxWakeup
) -> BackgroundWork:
    """The notify consumer as background work of the tasks app (its own HTTP client)."""

    async def run() -> None:
        async with httpx.AsyncClient(follow_redirects=False) as http:
            await Publisher(settings, pool, http, wakeup).run_forever()

    return BackgroundWork("events-notify", run)
