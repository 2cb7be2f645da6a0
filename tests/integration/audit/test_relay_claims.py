"""The relay's claim on the outbox, against real PostgreSQL: only one batch is in flight across
relays, always the oldest; an expired claim is taken over; delivered events are settled."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from taskflow_tasks.outbox.events import Actor, record_event
from taskflow_tasks.outbox.store import backlog, claim_batch, hold_claim, mark_delivered

LEASE = timedelta(seconds=30)


async def _connect(url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, row_factory=dict_row, prepare_threshold=None)


async def _fill(url: str, n: int) -> None:
    async with await _connect(url) as conn, conn.transaction():
        for i in range(n):
            await record_event(
                conn,
                tenant_id="t",
                project_id=1,
                entity_type="task",
                entity_id=i + 1,
                action="created",
                actor=Actor(worker_id=1, handle="@a"),
                details={},
                occurred_at=datetime.now(UTC),
            )


def test_one_batch_in_flight_oldest_first(db_url: str) -> None:
    async def scenario() -> None:
        await _fill(db_url, 25)
        a, b = await _connect(db_url), await _connect(db_url)
        async with a, b:
            # Two relays claiming at the same moment: the second sees the first's rows locked
            # (SKIP LOCKED) and does not jump ahead to younger events.
            async with a.transaction():
                first = await claim_batch(a, 10, LEASE)
                async with b.transaction():
                    assert await claim_batch(b, 10, LEASE) == []
            assert [r["id"] for r in first] == list(range(1, 11))
            # Claimed (committed) by the first relay: the second still waits its turn.
            async with b.transaction():
                assert await claim_batch(b, 10, LEASE) == []
            # Once delivered, the next batch goes to whoever asks: the next oldest events.
            async with a.transaction():
                await mark_delivered(a, [r["id"] for r in first], {})
            async with b.transaction():
                second = await claim_batch(b, 10, LEASE)
            assert [r["id"] for r in second] == list(range(11, 21))
            # A relay that died: its claim expires and the same batch is taken over.
            async with b.transaction():
                await hold_claim(b, [r["id"] for r in second], timedelta(seconds=-1), "died")
            async with a.transaction():
                retaken = await claim_batch(a, 10, LEASE)
            assert [r["id"] for r in retaken] == list(range(11, 21))
            async with a.transaction():
                await mark_delivered(a, list(range(11, 20)), {20: "actor_type: bad"})
                facts = await backlog(a)
            assert facts["backlog"] == 5
            row = await (
                await a.execute("SELECT delivered_at, last_error FROM tasks.outbox WHERE id = 20")
            ).fetchone()
            assert row is not None and row["delivered_at"] is not None
            assert row["last_error"] == "actor_type: bad"

    asyncio.run(scenario())
