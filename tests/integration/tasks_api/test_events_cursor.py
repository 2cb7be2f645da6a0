"""The event consumers' cursor over the outbox (issue 18): no row is skipped when transactions
commit out of id order, and the relay's prune keeps what a consumer has not read."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row
from taskflow_tasks.events import store
from taskflow_tasks.outbox.store import prune_delivered

from tests.conftest import StartService
from tests.support.issuer import TestIssuer


def _insert(conn: psycopg.Connection[Any]) -> int:
    event_id = uuid.uuid4()
    payload = psycopg.types.json.Jsonb({"event_id": str(event_id), "entity_type": "task"})
    row = conn.execute(
        "INSERT INTO tasks.outbox (event_id, payload) VALUES (%s, %s) RETURNING id",
        (event_id, payload),
    ).fetchone()
    assert row is not None
    return int(row[0])


async def _read(url: str, name: str) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(
        url, row_factory=dict_row, autocommit=True
    ) as conn:
        return await store.read_after(conn, name, 100)


def _read_final(url: str, name: str, count: int) -> list[dict[str, Any]]:
    """Rows become final once every older transaction of the cluster ended (other tests run
    on the same server): wait for them."""
    deadline = time.monotonic() + 20
    while True:
        rows = asyncio.run(_read(url, name))
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


async def _advance(url: str, name: str, rows: list[dict[str, Any]]) -> None:
    async with await psycopg.AsyncConnection.connect(
        url, row_factory=dict_row, autocommit=True
    ) as conn:
        await store.advance(conn, name, (rows[-1]["txid"], rows[-1]["id"]))


def test_a_row_committed_after_a_later_one_is_not_skipped(db_url: str) -> None:
    with psycopg.connect(db_url) as slow, psycopg.connect(db_url, autocommit=True) as fast:
        slow.execute("SELECT pg_current_xact_id()")  # its transaction starts first
        early = _insert(slow)  # takes the lower id, commits last
        late = _insert(fast)
        assert early < late
        # While the slow transaction runs, nothing after it is final: the consumer waits.
        assert asyncio.run(_read(db_url, "webhooks")) == []
        slow.commit()
    rows = _read_final(db_url, "webhooks", 2)
    assert sorted(r["id"] for r in rows) == [early, late]
    asyncio.run(_advance(db_url, "webhooks", rows))
    assert asyncio.run(_read(db_url, "webhooks")) == []
    # The other consumer's cursor is its own.
    assert len(_read_final(db_url, "notify", 2)) == 2


async def _prune(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(
        url, row_factory=dict_row, autocommit=True
    ) as conn:
        return await prune_delivered(conn, timedelta(0))


def test_prune_keeps_rows_a_consumer_has_not_read(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        outbox_id = _insert(conn)
        conn.execute("UPDATE tasks.outbox SET delivered_at = now() - interval '1 day'")
    assert asyncio.run(_prune(db_url)) == 0  # delivered to audit, unread by the consumers
    for consumer in ("notify", "webhooks"):
        asyncio.run(_advance(db_url, consumer, _read_final(db_url, consumer, 1)))
        assert asyncio.run(_prune(db_url)) == 0  # "reminders" has not read it yet
    asyncio.run(_advance(db_url, "reminders", _read_final(db_url, "reminders", 1)))
    assert asyncio.run(_prune(db_url)) == 1
    with psycopg.connect(db_url) as conn:
        left = conn.execute("SELECT count(*) FROM tasks.outbox WHERE id = %s", (outbox_id,))
        assert left.fetchone() == (0,)


def test_without_subscribers_nothing_is_sent_or_logged(
    start_service: StartService, db_url: str, issuer: TestIssuer
) -> None:
    svc = start_service(
        "tasks", DATABASE_URL=db_url, SSO_URL=issuer.url, EVENTS_POLL_INTERVAL="0.1"
    )
    token = issuer.token("quiet-user", tenant_id="tenant-a")
    with httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {token}"}) as http:
        pid = http.get("/api/projects").json()[0]["id"]
        tid = http.post(f"/api/projects/{pid}/tasks", json={"title": "Quiet"}).json()["id"]
        assert http.patch(f"/api/tasks/{tid}/status", json={"status": "completed"}).is_success
    # The consumers' cursors follow the outbox anyway (so the relay can prune it).
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with psycopg.connect(db_url) as conn:
            behind = conn.execute(
                "SELECT count(*) FROM tasks.event_consumers c WHERE EXISTS (SELECT 1 FROM"
                " tasks.outbox o WHERE (o.txid, o.id) > (c.last_txid, c.last_id))"
            ).fetchone()
        if behind == (0,):
            break
        time.sleep(0.2)
    assert behind == (0,)
    assert svc.log_path is not None
    lines = [
        json.loads(line) for line in svc.log_path.read_text().splitlines() if line.startswith("{")
    ]
    noisy = [
        line for line in lines
        if line.get("level") in {"warning", "error", "critical"}
        and ("webhook" in line.get("event", "") or "events" in line.get("event", "")
             or "reminder" in line.get("event", ""))
    ]  # fmt: skip
    assert noisy == []
