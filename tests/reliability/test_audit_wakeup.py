"""Audit you can read at once (issue 17, item 6): a write's audit entry is readable from the
audit service right after the write's response, without waiting for the relay's poll.

The relay polls every 30 s here, so an entry seen within a few seconds was delivered because the
relay was woken: by the write itself (in-process, the replica that took it), or by a NOTIFY of
another writer (LISTEN), or, behind PgBouncer in transaction mode (no LISTEN), by the write."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from tests.reliability.pgbouncer import PgBouncer
from tests.reliability.stack import (
    Stack,
    User,
    admin_connection,
    create_project,
    create_task,
    new_user,
)
from tests.support.issuer import TestIssuer

POLL = "30"  # the relay's poll interval: far longer than any wait below
SOON = 5.0  # seconds: generous for a loaded machine, six times shorter than the poll


def audit_entries(audit_url: str, user: User, path: str, within: float) -> list[dict[str, Any]]:
    """The entries at ``path`` of the audit service, as soon as there are any (or [])."""
    deadline = time.monotonic() + within
    with user.client(audit_url) as api:
        while True:
            resp = api.get(path)
            assert resp.status_code == 200, resp.text
            if resp.json() or time.monotonic() > deadline:
                return list(resp.json())
            time.sleep(0.02)


def start_split(stack: Stack, **env: str) -> None:
    stack.start("audit")
    stack.start("tasks", OUTBOX_RELAY_INTERVAL=POLL, **env)
    time.sleep(0.5)  # past the relay's first round at start-up: from now on it waits 30 s


def write_then_read(stack: Stack, user: User) -> list[dict[str, Any]]:
    with user.client(stack.url("tasks")) as api:
        project = create_project(api)
        task = create_task(api, project["id"])
        moved = api.patch(f"/api/tasks/{task['id']}/status", json={"status": "in_progress"})
        assert moved.status_code == 200, moved.text
    return audit_entries(stack.url("audit"), user, f"/api/tasks/{task['id']}/audit", SOON)


def test_audit_entry_readable_right_after_the_write(stack: Stack, issuer: TestIssuer) -> None:
    start_split(stack)
    entries = write_then_read(stack, new_user(issuer))
    assert {e["action"] for e in entries} >= {"created"}, entries


def test_audit_waits_for_the_poll_when_wakeup_is_off(stack: Stack, issuer: TestIssuer) -> None:
    """OUTBOX_WAKEUP=off is the old behaviour (polling only): the entry is not there yet."""
    start_split(stack, OUTBOX_WAKEUP="off")
    user = new_user(issuer)
    with user.client(stack.url("tasks")) as api:
        task = create_task(api, create_project(api)["id"])
    assert audit_entries(stack.url("audit"), user, f"/api/tasks/{task['id']}/audit", 2.0) == []


def write_elsewhere_and_notify(db_url: str, project_id: int) -> str:
    """Another writer: a copy of the project's event, new event id, committed with a NOTIFY."""
    with admin_connection(db_url) as conn:
        row = conn.execute(
            "SELECT payload FROM tasks.outbox WHERE payload->>'project_id' = %s"
            " ORDER BY id DESC LIMIT 1",
            (str(project_id),),
        ).fetchone()
        assert row is not None
        event_id = str(uuid.uuid4())
        payload = {**row[0], "event_id": event_id, "action": "updated"}
        with conn.transaction():
            conn.execute(
                "INSERT INTO tasks.outbox (event_id, payload) VALUES (%s, %s::jsonb)",
                (event_id, json.dumps(payload)),
            )
            conn.execute("NOTIFY taskflow_outbox")
    return event_id


def project_entries(stack: Stack, user: User, project_id: int, count: int) -> set[str]:
    """The event ids of the project's entries once there are ``count`` (or after SOON)."""
    deadline = time.monotonic() + SOON
    with user.client(stack.url("audit")) as api:
        while True:
            entries = api.get(f"/api/projects/{project_id}/audit").json()
            if len(entries) >= count or time.monotonic() > deadline:
                return {e["event_id"] for e in entries}
            time.sleep(0.02)


def test_notify_from_another_writer_wakes_the_relay(
    stack: Stack, issuer: TestIssuer, db_url: str
) -> None:
    """An event written outside the service (another process, psql) and announced with
    ``NOTIFY taskflow_outbox`` is delivered at once: the relay LISTENs."""
    start_split(stack)
    user = new_user(issuer)
    with user.client(stack.url("tasks")) as api:
        project = create_project(api)
    assert len(project_entries(stack, user, project["id"], 1)) == 1
    event_id = write_elsewhere_and_notify(db_url, project["id"])
    assert event_id in project_entries(stack, user, project["id"], 2)


def test_the_listener_reconnects(stack: Stack, issuer: TestIssuer, db_url: str) -> None:
    """Its connection killed (a restart, a failover), the listener connects again, and a NOTIFY
    after that still wakes the relay."""
    start_split(stack)
    user = new_user(issuer)
    with user.client(stack.url("tasks")) as api:
        project = create_project(api)
    assert len(project_entries(stack, user, project["id"], 1)) == 1
    listening = (
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'taskflow-tasks-outbox-listen'"
        " AND datname = current_database()"
    )
    with admin_connection(db_url) as conn:
        (old_pid,) = conn.execute(listening).fetchone() or (None,)
        assert old_pid is not None, "no LISTEN connection"
        conn.execute("SELECT pg_terminate_backend(%s)", (old_pid,))
        deadline = time.monotonic() + 10
        pids: list[int] = []
        while time.monotonic() < deadline:
            pids = [r[0] for r in conn.execute(listening).fetchall() if r[0] != old_pid]
            if pids:
                break
            time.sleep(0.1)
        assert pids, "the listener did not reconnect"
    time.sleep(0.3)  # its LISTEN runs just after it connects
    event_id = write_elsewhere_and_notify(db_url, project["id"])
    assert event_id in project_entries(stack, user, project["id"], 2)
    logs = "".join(p.read_text() for p in stack.log_dir.glob("tasks-*.log"))
    assert "outbox_listen_lost" in logs


def test_behind_pgbouncer_the_write_wakes_its_relay(
    pgbouncer: PgBouncer, db_url: str, issuer: TestIssuer, tmp_path: Path
) -> None:
    """PgBouncer in transaction mode: no LISTEN (OUTBOX_LISTEN=auto turns it off for a pooled
    host), the in-process signal still makes the entry readable at once."""
    stack = Stack(db_url=pgbouncer.url_for(db_url), issuer=issuer, log_dir=tmp_path)
    try:
        start_split(stack)
        entries = write_then_read(stack, new_user(issuer))
        assert {e["action"] for e in entries} >= {"created"}, entries
        logs = "".join(p.read_text() for p in tmp_path.glob("tasks-*.log"))
        assert "outbox_listening" not in logs
    finally:
        stack.stop_all()
