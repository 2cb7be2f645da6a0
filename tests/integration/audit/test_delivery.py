"""No audit event is lost or doubled: writes succeed while the audit service is down, and the
relay(s) deliver every event once, in order, when it comes back."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
from taskflow_tasks.outbox.events import Actor, record_event

from .conftest import AuditStack, MakeUser, outbox_ids, stored_ids, wait_delivered


def test_writes_while_audit_is_down_are_delivered_once_in_order(
    stack: AuditStack, make_user: MakeUser, db: psycopg.Connection[dict[str, Any]]
) -> None:
    stack.start_tasks()  # the audit service is not running
    alice = make_user()
    project = alice.new_project()
    tasks = [alice.new_task(project, f"Task {i}") for i in range(200)]  # 200 writes: all 201
    assert len(set(tasks)) == 200

    ready = httpx.get(f"{stack.tasks_url}/health/ready").json()
    assert ready["status"] == "ready" and ready["outbox"]["backlog"] >= 201
    assert stored_ids(db) == []

    stack.start_audit()
    wait_delivered(db)
    assert httpx.get(f"{stack.tasks_url}/health/ready").json()["outbox"]["backlog"] == 0
    assert httpx.get(f"{stack.audit_url}/health/ready").json()["audit_entries"] >= 201

    expected = outbox_ids(db)
    assert len(expected) >= 201
    assert stored_ids(db) == expected  # each event exactly once, in outbox order

    # Readable through the API, oldest first with order=asc, following the cursor.
    history = alice.all_pages(f"/api/projects/{project}/audit", order="asc")
    created = [e for e in history if e["entity_type"] == "task" and e["action"] == "created"]
    assert [e["entity_id"] for e in created] == tasks
    assert all(e["actor_handle"] and e["actor_type"] == "human" for e in history)
    # Newest first by default, same entries reversed (stable order: created_at, id).
    newest_first = alice.all_pages(f"/api/projects/{project}/audit")
    assert [e["id"] for e in newest_first] == [e["id"] for e in reversed(history)]
    # Offset paging agrees with the cursor.
    page2 = alice.audit.get(f"/api/projects/{project}/audit", params={"limit": 50, "offset": 50})
    assert [e["id"] for e in page2.json()] == [e["id"] for e in newest_first[50:100]]

    verify = alice.audit.get("/api/audit/verify", params={"project_id": project})
    assert verify.status_code == 200, verify.text
    assert verify.json()["ok"] is True and verify.json()["checked"] == len(history)


PER_TASK_SQL = {
    "stored": "SELECT entity_id AS task, action FROM audit.entries"
    " WHERE entity_type = 'task' ORDER BY id",
    "outbox": "SELECT (payload->>'entity_id')::bigint AS task, payload->>'action' AS action"
    " FROM tasks.outbox WHERE payload->>'entity_type' = 'task' ORDER BY id",
}


def _per_task(db: psycopg.Connection[dict[str, Any]], where: str) -> dict[int, list[str]]:
    """Each task's actions, in the order they were stored (or written to the outbox)."""
    by_task: dict[int, list[str]] = {}
    for row in db.execute(PER_TASK_SQL[where]).fetchall():
        by_task.setdefault(int(row["task"]), []).append(row["action"])
    return by_task


def _ingest_totals(log_text: str) -> dict[str, int]:
    totals = {"stored": 0, "duplicates": 0}
    for line in log_text.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == "audit_ingested":
                totals["stored"] += record["stored"]
                totals["duplicates"] += record["duplicates"]
    return totals


def test_two_relays_deliver_each_event_exactly_once(
    stack: AuditStack, make_user: MakeUser, db: psycopg.Connection[dict[str, Any]]
) -> None:
    first = stack.start_tasks()
    second = stack.start_tasks()
    alice = make_user()
    project = alice.new_project()
    # Writes through both replicas at once, while the audit service is down: a backlog that
    # both relays then race to drain.
    bob = make_user()
    bob.tasks.base_url = httpx.URL(second.url)
    alice.add_member(project, bob)

    def write(i: int) -> int:
        """Two events about one task, in this order."""
        user = alice if i % 2 else bob
        task = user.new_task(project, f"T{i}")
        moved = user.tasks.patch(f"/api/tasks/{task}/status", json={"status": "in_progress"})
        assert moved.status_code == 200, moved.text
        return task

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert len(list(pool.map(write, range(60)))) == 60
    backlog = outbox_ids(db)  # everything committed before the audit service is back

    stack.start_audit()
    # More writes, in waves, while both relays are delivering (and competing for batches).
    with ThreadPoolExecutor(max_workers=8) as pool:
        for wave in range(60, 120, 10):
            assert len(list(pool.map(write, range(wave, wave + 10)))) == 10
            time.sleep(0.3)
    wait_delivered(db)

    expected, stored = outbox_ids(db), stored_ids(db)
    assert sorted(stored) == sorted(expected) and len(stored) == len(expected)  # once each
    # The backlog goes first, in outbox order. Later, concurrent writers commit in their own
    # order, which is the order their events become visible and are delivered in; each
    # entity's events (serialised by its row lock) keep their order.
    assert stored[: len(backlog)] == backlog
    per_task = _per_task(db, "stored")
    assert per_task == _per_task(db, "outbox")
    assert len(per_task) == 120 and all(
        a == ["created", "status_changed"] for a in per_task.values()
    )
    assert first.log_path is not None and second.log_path is not None
    delivered_by = [
        sum(
            json.loads(line).get("delivered", 0)
            for line in p.read_text().splitlines()
            if line.startswith("{") and '"outbox_delivered"' in line
        )
        for p in (first.log_path, second.log_path)
    ]
    assert sum(delivered_by) == len(expected)  # no event was posted twice
    assert stack.audit is not None and stack.audit.log_path is not None
    totals = _ingest_totals(stack.audit.log_path.read_text())
    assert totals == {"stored": len(expected), "duplicates": 0}


def test_undeliverable_events_are_set_aside_and_never_block_the_rest(
    stack: AuditStack, make_user: MakeUser, db: psycopg.Connection[dict[str, Any]], db_url: str
) -> None:
    """A malformed event (refused by the audit service) and one too large for any request are
    marked with their reason and skipped; the events behind them still arrive."""
    stack.start_audit()
    stack.start_tasks()
    alice = make_user()
    project = alice.new_project()

    async def write() -> None:
        async with (
            await psycopg.AsyncConnection.connect(db_url, prepare_threshold=None) as conn,
            conn.transaction(),
        ):
            for action, details in (
                ("Not An Action", {}),
                ("huge", {"blob": "x" * 1_100_000}),
                ("after_them", {"ok": True}),
            ):
                await record_event(
                    conn,
                    tenant_id=alice.tenant,
                    project_id=project,
                    entity_type="project",
                    entity_id=project,
                    action=action,
                    actor=Actor(worker_id=1, handle="@a"),
                    details=details,
                    occurred_at=datetime.now(UTC),
                )

    asyncio.run(write())
    wait_delivered(db)
    errors = {
        row["action"]: row["last_error"]
        for row in db.execute(
            "SELECT payload->>'action' AS action, last_error FROM tasks.outbox"
            " WHERE payload->>'entity_type' = 'project' AND last_error IS NOT NULL"
        ).fetchall()
    }
    assert "rejected by the audit service: action" in errors["Not An Action"]
    assert "exceeds what the audit service accepts" in errors["huge"]
    history = alice.all_pages(f"/api/projects/{project}/audit")
    assert history[0]["action"] == "after_them"
    assert {"Not An Action", "huge"}.isdisjoint(r["action"] for r in history)
