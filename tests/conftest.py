"""Shared fixtures: one PostgreSQL per run, a migrated template, a clean database per test,
real service processes, and a test SSO issuing real JWTs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.reliability.pgbouncer import maybe_via_pgbouncer
from tests.support.issuer import TestIssuer
from tests.support.postgres import create_database, drop_database, postgres_for_tests
from tests.support.processes import ServiceProcess


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    with postgres_for_tests() as url:
        yield url


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str) -> Iterator[str]:
    """A database with every service's migrations applied, cloned for each test."""
    from taskflow_cli.stack import migrate

    url = create_database(pg_admin_url)
    migrate(url)
    yield urlsplit(url).path.lstrip("/")
    drop_database(pg_admin_url, url)


@pytest.fixture
def db_url(request: pytest.FixtureRequest, pg_admin_url: str, template_db: str) -> Iterator[str]:
    """A clean, migrated database for this test only (through a real PgBouncer in transaction
    mode when TASKFLOW_VIA_PGBOUNCER=1, see tests/reliability/pgbouncer.py)."""
    url = create_database(pg_admin_url, template=template_db)
    yield maybe_via_pgbouncer(request.config, pg_admin_url, url)
    drop_database(pg_admin_url, url)


@pytest.fixture(scope="session")
def issuer() -> Iterator[TestIssuer]:
    sso = TestIssuer().start()
    yield sso
    sso.stop()


StartService = Callable[..., ServiceProcess]


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[StartService]:
    """``start_service("tasks", DATABASE_URL=..., ...)`` → a running uvicorn process."""
    started: list[ServiceProcess] = []

    def start(name: str, **env: str) -> ServiceProcess:
        env.setdefault("LOG_FORMAT", "json")
        proc = ServiceProcess(name, env, log_path=tmp_path / f"{name}-{len(started)}.log")
        started.append(proc)
        return proc.start()

    yield start
    for proc in reversed(started):
        proc.stop()
