"""When an event consumer reads the outbox again (the notify publisher, the webhook worker).

- At once after a wake-up: a write answered by this replica, or a ``NOTIFY`` (``outbox.wakeup``).
- Again and again after one, at 20 ms, then 40, 80, ... until the poll interval: a consumer
  takes a row only once every transaction older than the row's has ended (``store.read_after``),
  anywhere on the database server, so the row of the write that woke it may be held back, for a
  few milliseconds by another request's transaction, or for seconds by a long one elsewhere.
- Otherwise after ``EVENTS_POLL_INTERVAL`` (the fallback, and the only pace with
  ``OUTBOX_WAKEUP=false``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Set

from ..outbox.wakeup import OutboxWakeup

SETTLE = 0.02  # seconds to the first look after a wake-up; doubled at each look after it
QUIET = 0.1  # seconds between the looks of a consumer with nobody to publish to


class Pacer:
    def __init__(self, wakeup: OutboxWakeup, poll_interval: float) -> None:
        self.signal = wakeup.subscribe()
        self.poll_interval = poll_interval
        self.after_wake: float | None = None  # the next look's delay while settling

    def begin(self) -> None:
        """Before each read: a wake-up that arrives during the round is kept."""
        self.signal.clear()

    async def idle(
        self, busy: Set[asyncio.Task[None]] = frozenset(), *, listening: bool = True
    ) -> bool:
        """Nothing more to read now: wait for the next look (or, sooner, for a wake-up or one
        of ``busy`` to finish). Whether a wake-up came. A consumer with nobody to publish to now
        (no notification service, no active webhook) is not ``listening``: it looks again at
        most every ``QUIET`` s however many writes wake it (the write that makes a webhook
        included, so the next one's event is not late), not once per write."""
        if not listening:
            came = await self.signal.wait(self.poll_interval)
            if came:
                await asyncio.sleep(QUIET)
            self.after_wake = SETTLE if came else None
            return came
        within = self.poll_interval if self.after_wake is None else self.after_wake
        if busy:
            woken = asyncio.ensure_future(self.signal.wait(within))
            try:
                await asyncio.wait(
                    {woken, *busy}, timeout=within, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                woken.cancel()
            came = woken.done() and not woken.cancelled() and woken.result()
        else:
            came = await self.signal.wait(within)
        if came:
            self.after_wake = SETTLE
        elif self.after_wake is not None:
            longer = self.after_wake * 2
            self.after_wake = longer if longer < self.poll_interval else None
        return came
