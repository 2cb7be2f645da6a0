"""When an event consumer reads the outbox again (the notify publisher, the webhook worker).

- At once after a wake-up: a write answered by this replica, or a ``NOTIFY`` (``outbox.wakeup``).
- A few times shortly after one: a consumer takes a row only once every transaction older than
  the row's has ended (``store.read_after``), so the row of the write that woke it may still be
  held back, for a few milliseconds, by another request's transaction or the relay's.
- Otherwise after ``EVENTS_POLL_INTERVAL`` (the fallback, and the only pace with
  ``OUTBOX_WAKEUP=false``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Set

from ..outbox.wakeup import OutboxWakeup

SETTLE = 0.02  # seconds between the looks after a wake-up
SETTLE_LOOKS = 5
QUIET = 0.1  # seconds between the looks of a consumer with nobody to publish to


class Pacer:
    def __init__(self, wakeup: OutboxWakeup, poll_interval: float) -> None:
        self.signal = wakeup.subscribe()
        self.poll_interval = poll_interval
        self.settling = 0

    def begin(self) -> None:
        """Before each read: a wake-up that arrives during the round is kept."""
        self.signal.clear()

    async def idle(
        self, busy: Set[asyncio.Task[None]] = frozenset(), *, listening: bool = True
    ) -> bool:
        """Nothing more to read now: wait for the next look (or, sooner, for one of ``busy``
        to finish). Whether a wake-up came. A consumer with nobody to publish to now (no
        notification service, no active webhook) is not ``listening``: it looks again at most
        every ``QUIET`` s however many writes wake it (the write that makes a webhook included,
        so the next one's event is not late), not once per write."""
        if not listening:
            self.settling = 0
            came = await self.signal.wait(self.poll_interval)
            if came:
                await asyncio.sleep(QUIET)
            return came
        if self.settling:
            self.settling -= 1
            await asyncio.sleep(SETTLE)
            return False
        if busy:
            woken = asyncio.ensure_future(self.signal.wait(self.poll_interval))
            try:
                await asyncio.wait(
                    {woken, *busy}, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                woken.cancel()
            came = woken.done() and not woken.cancelled() and woken.result()
        else:
            came = await self.signal.wait(self.poll_interval)
        if came:
            self.settling = SETTLE_LOOKS
        return came
