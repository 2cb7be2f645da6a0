"""Neon's pooled endpoint is PgBouncer in transaction mode: the services, their migrations, the
outbox relay and the audit reads must work through a real one, with fewer server connections than
clients, so any reliance on session state (session SET, session advisory locks, LISTEN/NOTIFY,
prepared statements kept across transactions) shows up as an error here.

The whole integration suite can also run through PgBouncer: ``TASKFLOW_VIA_PGBOUNCER=1 uv run
pytest tests/integration`` (every ``db_url`` then points at the shared PgBouncer)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from taskflow_cli.stack import migrate

from tests.reliability.conftest import require_pgbouncer
from tests.reliability.pgbouncer import PgBouncer
from tests.reliability.stack import (
    Stack,
    admin_connection,
    create_project,
    create_task,
    new_user,
)
from tests.support.issuer import TestIssuer
from tests.support.postgres import create_database, drop_database


@pytest.fixture
def tight_pgbouncer(pg_admin_url: str) -> Iterator[PgBouncer]:
    """A PgBouncer with only 3 server connections per database: clients must share them."""
    require_pgbouncer(pg_admin_url)
    bouncer = PgBouncer(pg_admin_url, pool_size=3).start()
    yield bouncer
    bouncer.stop()


def test_pool_treats_the_pgbouncer_url_as_pooled(pgbouncer: PgBouncer, db_url: str) -> None:
    from taskflow_core.db import normalize_database_url

    target = normalize_database_url(pgbouncer.url_for(db_url))
    assert target.pooled
    assert target.prepare_threshold is None


def test_migrations_through_pgbouncer_twice_and_concurrently(
    pg_admin_url: str, tight_pgbouncer: PgBouncer
) -> None:
    url = create_database(pg_admin_url)
    try:
        pooled = tight_pgbouncer.url_for(url)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                migrate(pooled)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        again = migrate(pooled)
        assert all(not versions for versions in again.values()), again
        with admin_connection(url) as conn:
            schemas = {
                row[0]
                for row in conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname IN ('tasks','audit','auth')"
                )
            }
        assert schemas == {"tasks", "audit", "auth"}
    finally:
        drop_database(pg_admin_url, url)


def test_every_service_is_ready_through_pgbouncer(
    tight_pgbouncer: PgBouncer, db_url: str, issuer: TestIssuer, tmp_path: Path
) -> None:
    stack = Stack(db_url=tight_pgbouncer.url_for(db_url), issuer=issuer, log_dir=tmp_path)
    try:
        for name in ("tasks", "audit", "auth-verifier"):
            svc = stack.start(name)
            for _ in range(20):  # many transactions over 3 shared server connections
                ready = httpx.get(f"{svc.url}/health/ready", timeout=10)
                assert ready.status_code == 200, ready.text
    finally:
        stack.stop_all()


def test_api_flows_through_pgbouncer(
    tight_pgbouncer: PgBouncer, db_url: str, issuer: TestIssuer, tmp_path: Path
) -> None:
    """Provisioning, project/task CRUD, status changes, relay delivery and audit reads, with
    10 concurrent clients over 3 server connections."""
    stack = Stack(db_url=tight_pgbouncer.url_for(db_url), issuer=issuer, log_dir=tmp_path)
    try:
        tasks = stack.start("tasks")
        audit = stack.start("audit")
        owner = new_user(issuer)
        with owner.client(tasks.url) as api:
            projects = api.get("/api/projects")
            assert projects.status_code == 200, projects.text
            assert [p["is_default"] for p in projects.json()] == [True]  # first-login provisioning
            project = create_project(api)
            renamed = api.put(f"/api/projects/{project['id']}", json={"name": "Renamed"})
            assert renamed.status_code == 200, renamed.text

        def one_client(n: int) -> list[int]:
            """Create a task, start it, move its progress, list, read, complete."""
            ids: list[int] = []
            with owner.client(tasks.url) as api:
                for i in range(3):
                    task = create_task(api, project["id"], title=f"c{n}-{i}")
                    ids.append(task["id"])
                    path = f"/api/tasks/{task['id']}"
                    steps = [
                        api.patch(f"{path}/status", json={"status": "in_progress"}),
                        api.patch(f"{path}/progress", json={"percent": 50}),
                        api.get(f"/api/projects/{project['id']}/tasks"),
                        api.get(path),
                        api.put(path, json={"title": f"c{n}-{i}-renamed"}),
                        api.patch(f"{path}/status", json={"status": "completed"}),
                    ]
                    for resp in steps:
                        assert resp.status_code == 200, (resp.request.url, resp.text)
            return ids

        with ThreadPoolExecutor(10) as pool:
            created = [i for ids in pool.map(one_client, range(10)) for i in ids]
        assert len(set(created)) == 30

        with owner.client(tasks.url) as api:
            listed = api.get(f"/api/projects/{project['id']}/tasks", params={"limit": 100})
            assert listed.status_code == 200
            assert {t["id"] for t in listed.json()} == set(created)
            assert {t["status"] for t in listed.json()} == {"completed"}

        # The relay delivers every event through PgBouncer; the audit service reads them back.
        deadline = time.monotonic() + 60
        entries: list[dict[str, object]] = []
        with owner.client(audit.url) as api:
            while time.monotonic() < deadline:
                resp = api.get(f"/api/tasks/{created[-1]}/audit")
                assert resp.status_code == 200, resp.text
                entries = list(resp.json())
                if len(entries) >= 5:
                    break
                time.sleep(0.5)
        actions = sorted(str(e["action"]) for e in entries)
        assert actions == sorted(
            ["created", "status_changed", "progress_updated", "updated", "status_changed"]
        ), entries
        dbname = urlsplit(db_url).path.lstrip("/")
        with admin_connection(db_url) as conn:
            pending = conn.execute(
                "SELECT count(*) FROM tasks.outbox WHERE delivered_at IS NULL"
            ).fetchone()
            deadline = time.monotonic() + 60
            while pending and pending[0] and time.monotonic() < deadline:
                time.sleep(0.5)
                pending = conn.execute(
                    "SELECT count(*) FROM tasks.outbox WHERE delivered_at IS NULL"
                ).fetchone()
            assert pending is not None and pending[0] == 0, f"undelivered events in {dbname}"
            outbox = conn.execute("SELECT count(*) FROM tasks.outbox").fetchone()
            stored = conn.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM audit.entries"
            ).fetchone()
        assert outbox is not None and stored is not None
        assert stored[0] == stored[1] == outbox[0]  # every event stored, exactly once
    finally:
        stack.stop_all()


def test_no_session_state_survives_a_transaction(tight_pgbouncer: PgBouncer, db_url: str) -> None:
    """Guard for the harness itself: PgBouncer really multiplexes (a session SET made by one
    client is not visible on its next transaction when another client got the connection)."""
    pooled = tight_pgbouncer.url_for(db_url)
    marker = uuid.uuid4().hex[:8]
    with admin_connection(pooled) as first:
        first.execute(f"SET application_name = 'probe-{marker}'")  # type: ignore[arg-type]
        pids = set()
        for _ in range(10):
            with ThreadPoolExecutor(6) as pool:
                pids |= set(pool.map(lambda _: _backend_pid(pooled), range(6)))
        assert len(pids) <= 3  # 3 server connections shared by every client


def _backend_pid(url: str) -> int:
    with admin_connection(url) as conn:
        row = conn.execute("SELECT pg_backend_pid(), pg_sleep(0.05)").fetchone()
        assert row is not None
        return int(row[0])


def test_server_connections_killed_behind_pgbouncer(
    tight_pgbouncer: PgBouncer,
    db_url: str,
    pg_admin_url: str,
    issuer: TestIssuer,
    tmp_path: Path,
) -> None:
    """Neon drops the pooler's server connections: requests in flight fail fast with 503 (or
    succeed), the first requests afterwards succeed, every acknowledged write is stored once."""
    from tests.reliability.test_database_faults import (
        DB_ENV,
        BackendKiller,
        assert_tasks_written_once,
        dbname,
        flow_requests,
    )

    stack = Stack(db_url=tight_pgbouncer.url_for(db_url), issuer=issuer, log_dir=tmp_path)
    try:
        tasks = stack.start("tasks", **DB_ENV)
        user = new_user(issuer)
        with user.client(tasks.url) as api:
            project = create_project(api)
        deadline = time.monotonic() + 4.0
        with BackendKiller(pg_admin_url, dbname(db_url), interval=0.1) as killer:
            created, tried, _ = flow_requests(
                tasks.url, user, project["id"], until=lambda: time.monotonic() > deadline
            )
        assert killer.killed > 0
        with user.client(tasks.url) as api:
            first = api.get("/api/projects")
            assert first.status_code == 200, first.text
            after = create_task(api, project["id"], title="after-the-kills")
        created.add(after["title"])
        tried.add(after["title"])
        assert_tasks_written_once(db_url, project["id"], created, tried)
    finally:
        stack.stop_all()
