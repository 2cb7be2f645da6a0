"""The audit service down or slow while the tasks service takes writes: every write succeeds,
and once the audit service answers again every audit event is stored exactly once and readable
through the audit API (the transactional outbox's guarantee, tested under concurrent load)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.reliability.stack import Stack, User, admin_connection, create_project, new_user
from tests.reliability.stubs import DelayingForwarder
from tests.support.issuer import TestIssuer

WRITES = 200
CLIENTS = 10


@pytest.fixture
def audit_door(stack: Stack) -> Iterator[DelayingForwarder]:
    """What the tasks service knows as AUDIT_URL: a forwarder we can close or slow down."""
    door = DelayingForwarder(target=stack.url("audit"), refuse=True).start()
    stack.env["AUDIT_URL"] = door.url
    yield door
    door.stop()


def write_tasks(base_url: str, user: User, project_id: int) -> list[int]:
    """WRITES task creations from CLIENTS concurrent clients; every one must be acknowledged."""

    def create(n: int) -> int:
        with user.client(base_url) as api:
            resp = api.post(
                f"/api/projects/{project_id}/tasks",
                json={"title": f"w-{n}-{uuid.uuid4().hex[:6]}"},
            )
            assert resp.status_code == 201, resp.text
            return int(resp.json()["id"])

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(create, range(WRITES)))


def wait_delivered(db_url: str, within: float = 90.0) -> None:
    deadline = time.monotonic() + within
    pending = -1
    with admin_connection(db_url) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM tasks.outbox WHERE delivered_at IS NULL"
            ).fetchone()
            pending = int(row[0]) if row else -1
            if pending == 0:
                return
            time.sleep(0.5)
    raise AssertionError(f"{pending} audit events still undelivered after {within}s")


def assert_each_event_stored_once(db_url: str, task_ids: list[int]) -> None:
    with admin_connection(db_url) as conn:
        outbox = conn.execute("SELECT event_id FROM tasks.outbox ORDER BY id").fetchall()
        stored = conn.execute("SELECT event_id FROM audit.entries ORDER BY id").fetchall()
        created = conn.execute(
            "SELECT entity_id, count(*) FROM audit.entries"
            " WHERE entity_type = 'task' AND action = 'created' GROUP BY entity_id"
        ).fetchall()
    outbox_ids = [r[0] for r in outbox]
    stored_ids = [r[0] for r in stored]
    assert len(stored_ids) == len(set(stored_ids)), "an event was stored twice"
    assert set(stored_ids) == set(outbox_ids), "an event was lost (or invented)"
    per_task = {int(entity): count for entity, count in created}
    assert {t: per_task.get(t) for t in task_ids} == dict.fromkeys(task_ids, 1)


def read_project_audit(base_url: str, user: User, project_id: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    with user.client(base_url) as api:
        offset = 0
        while True:
            page = api.get(
                f"/api/projects/{project_id}/audit", params={"limit": 100, "offset": offset}
            )
            assert page.status_code == 200, page.text
            body = page.json()
            items = body if isinstance(body, list) else body.get("items", body.get("entries", []))
            entries += items
            if len(items) < 100:
                return entries
            offset += 100


@pytest.mark.parametrize("fault", ["down", "refusing", "slow"])
def test_writes_succeed_and_audit_catches_up(
    fault: str, stack: Stack, audit_door: DelayingForwarder, db_url: str, issuer: TestIssuer
) -> None:
    """down: nothing listens at AUDIT_URL until the audit service starts there;
    refusing: it answers 503; slow: it answers after the relay's timeout."""
    if fault == "down":
        stack.env["AUDIT_URL"] = stack.url("audit")  # not started yet
    elif fault == "slow":
        audit_door.refuse = False
        audit_door.delay = 5.0  # past the relay's HTTP timeout (HTTP_TIMEOUT=2)
        stack.start("audit")
    tasks = stack.start("tasks")
    user = new_user(issuer)
    with user.client(tasks.url) as api:
        project = create_project(api)

    task_ids = write_tasks(tasks.url, user, project["id"])
    assert len(set(task_ids)) == WRITES

    audit_door.refuse = False
    audit_door.delay = 0.0
    if "audit" not in stack.procs:
        stack.start("audit")
    wait_delivered(db_url)
    assert_each_event_stored_once(db_url, task_ids)
    entries = read_project_audit(stack.url("audit"), user, project["id"])
    audited = [e["entity_id"] for e in entries if e["entity_type"] == "task"]
    assert sorted(audited) == sorted(task_ids)
    assert tasks.proc is not None and tasks.proc.poll() is None
