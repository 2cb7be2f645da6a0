"""Waking the outbox's readers (the relay, and the event consumers that publish to the
notification service and to webhooks) when there is something to read, instead of waiting for
their poll.

Two sources, both optional, polling (``OUTBOX_RELAY_INTERVAL``, ``EVENTS_POLL_INTERVAL``) stays
the fallback:

- **in-process**: :class:`WakeOnWrite` wakes the replica's :class:`OutboxWakeup` when a write
  request (POST/PUT/PATCH/DELETE) is answered with a 2xx/3xx. Its transaction, and so its outbox
  event, committed before the response was built, so the relay of the replica that took the
  write claims the event while the response is being sent (and the webhooks fan it out).
- **LISTEN** on :data:`CHANNEL`, on a connection of its own outside the pool
  (:class:`OutboxListener`, reconnecting with backoff): any other writer (a ``psql`` session, a
  tool, another process) wakes every replica's relay with ``NOTIFY taskflow_outbox`` after its
  commit. ``OUTBOX_LISTEN=auto`` (the default) listens unless the database is reached through
  PgBouncer in transaction mode (a Neon ``-pooler`` host), where a LISTEN would be lost with its
  server connection; ``on`` / ``off`` force it.

The services' own writes do not NOTIFY inside their transactions: a NOTIFY makes PostgreSQL
serialise the commits of every notifying transaction on one lock (their WAL flushes included);
an ``INSERT`` + ``NOTIFY`` per transaction ran at well under half the rate of a plain
``INSERT`` in pgbench on this machine. The in-process signal costs nothing, and replicas never
need each other's: only one batch is in flight across replicas, and the relay holding it claims
again at once after each delivered batch, so an event whose replica found the claim taken is
picked up by the holder's next round.
"""

from __future__ import annotations

import asyncio
from typing import Any

import falcon
import falcon.asgi
import psycopg
import structlog
from taskflow_core.config import Settings
from taskflow_core.db import connection_kwargs, normalize_database_url
from taskflow_core.service import BackgroundWork

log = structlog.get_logger("taskflow.outbox")

CHANNEL = "taskflow_outbox"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RECONNECT_FIRST = 0.5
RECONNECT_MAX = 30.0
KEEPALIVE = 60.0


class WakeSignal:
    """One reader's level-triggered signal: set any number of times, the reader's next
    :meth:`wait` returns at once. The reader calls :meth:`clear` before each read, so a wake
    that arrives while it works is never lost."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    async def wait(self, within: float) -> bool:
        """Wait up to ``within`` seconds for a wake; whether one came."""
        try:
            async with asyncio.timeout(within):
                await self._event.wait()
        except TimeoutError:
            return False
        return True


class OutboxWakeup:
    """What wakes the outbox's readers (the relay, and the event consumers: see
    ``events.pacing``): each takes its own :class:`WakeSignal` with :meth:`subscribe`, and
    :meth:`wake` sets them all. Disabled (``OUTBOX_WAKEUP=false``), readers only poll."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._signals: list[WakeSignal] = []

    def subscribe(self) -> WakeSignal:
        signal = WakeSignal()
        self._signals.append(signal)
        return signal

    def wake(self) -> None:
        if self.enabled:
            for signal in self._signals:
                signal.set()


class WakeOnWrite:
    """Falcon middleware: a write answered with success wakes this replica's outbox readers."""

    def __init__(self, wakeup: OutboxWakeup) -> None:
        self.wakeup = wakeup

    async def process_response(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: object,
        req_succeeded: bool,
    ) -> None:
        written = req.method in WRITE_METHODS and req_succeeded
        if written and falcon.http_status_to_code(resp.status) < 400:
            self.wakeup.wake()


def listen_enabled(settings: Settings) -> bool:
    """``OUTBOX_LISTEN``: ``on``, ``off``, or ``auto`` (on unless behind a transaction pooler)."""
    if not settings.outbox_wakeup or settings.outbox_listen == "off":
        return False
    if settings.outbox_listen == "on":
        return True
    return not normalize_database_url(settings.database_url).pooled


class OutboxListener:
    """``LISTEN taskflow_outbox`` on a dedicated connection; each notification wakes the relay.

    Reconnects with exponential backoff when the connection is lost; after each (re)connection
    it wakes the relay once, for whatever was notified while it was away."""

    def __init__(self, settings: Settings, wakeup: OutboxWakeup) -> None:
        target = normalize_database_url(settings.database_url)
        self.conninfo = target.conninfo
        self.kwargs: dict[str, Any] = connection_kwargs(
            target, settings, "taskflow-tasks-outbox-listen"
        )
        self.wakeup = wakeup
        self.listening = False

    async def run_forever(self) -> None:
        delay = RECONNECT_FIRST
        while True:
            try:
                await self._listen()
            except (psycopg.Error, OSError) as exc:
                if self.listening:  # it worked until now: retry soon
                    delay = RECONNECT_FIRST
                log.warning(
                    "outbox_listen_lost",
                    error=f"{type(exc).__name__}: {str(exc).strip()[:200]}",
                    retry_in_s=delay,
                    meanwhile="the relay polls every OUTBOX_RELAY_INTERVAL",
                )
            self.listening = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX)

    async def _listen(self) -> None:
        conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True, **self.kwargs)
        async with conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            self.listening = True
            log.info("outbox_listening", channel=CHANNEL)
            self.wakeup.wake()
            while True:
                async for _ in conn.notifies(timeout=KEEPALIVE):
                    self.wakeup.wake()
                # Quiet for a while: a statement keeps the connection from counting as idle
                # (Neon drops idle ones after 5 minutes) and finds a silently dead one.
                await conn.execute("SELECT 1")


def listener_work(settings: Settings, wakeup: OutboxWakeup) -> BackgroundWork:
    return BackgroundWork("outbox-listen", OutboxListener(settings, wakeup).run_forever)
