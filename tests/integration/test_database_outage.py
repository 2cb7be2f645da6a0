"""A running service whose PostgreSQL stops answers readiness 503 quickly and recovers by
itself; runs on the embedded PostgreSQL, so the fresh-machine path stays tested."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from taskflow_cli.stack import migrate

from tests.conftest import StartService
from tests.support.postgres import embedded_postgres

pytestmark = pytest.mark.embedded


def test_readiness_follows_the_database(tmp_path: Path, start_service: StartService) -> None:
    import pgserver

    pgdata = tmp_path / "pg"
    with embedded_postgres(pgdata) as (url, server):
        migrate(url)
        svc = start_service("tasks", DATABASE_URL=url, DB_POOL_TIMEOUT="2")
        assert httpx.get(f"{svc.url}/health/ready", timeout=5).status_code == 200

        server.cleanup()  # PostgreSQL stops; the service keeps running
        started = time.monotonic()
        down = httpx.get(f"{svc.url}/health/ready", timeout=5)
        assert down.status_code == 503
        assert time.monotonic() - started < 5
        assert down.headers["Retry-After"]
        assert down.json()["status_code"] == 503
        assert httpx.get(f"{svc.url}/health", timeout=5).status_code == 200

        pgserver.get_server(pgdata, cleanup_mode="stop")  # back, same data folder
        deadline = time.monotonic() + 30
        status = 0
        while time.monotonic() < deadline:
            status = httpx.get(f"{svc.url}/health/ready", timeout=5).status_code
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200
