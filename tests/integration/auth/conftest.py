"""Fixtures for the auth integration tests: a fresh test SSO when a test stops or counts its
JWKS, and a helper to start the auth-verifier as a real process against it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.issuer import TestIssuer
from tests.support.postgres import create_database, drop_database
from tests.support.processes import ServiceProcess

SERVICE_SECRET = "integration-service-secret-0123456789abcdef"
AUDIENCE = "taskflow-api"

StartVerifier = Callable[..., ServiceProcess]


@pytest.fixture
def own_issuer() -> Iterator[TestIssuer]:
    """A test SSO of this test only (safe to stop, or to count its JWKS fetches)."""
    sso = TestIssuer().start()
    yield sso
    sso.stop()


@pytest.fixture(scope="module")
def module_db(pg_admin_url: str, template_db: str) -> Iterator[str]:
    """A migrated database shared by one test module (for processes started once per module)."""
    url = create_database(pg_admin_url, template=template_db)
    yield url
    drop_database(pg_admin_url, url)


@pytest.fixture(scope="module")
def shared_verifier(
    module_db: str, issuer: TestIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """One auth-verifier per module, trusting the session issuer, with iss/aud enforced."""
    folder = tmp_path_factory.mktemp("verifier")
    proc = ServiceProcess(
        "auth-verifier",
        {
            "DATABASE_URL": module_db,
            "SSO_URL": issuer.url,
            "SERVICE_SECRET": SERVICE_SECRET,
            "JWT_ISSUER": issuer.issuer,
            "JWT_AUDIENCE": AUDIENCE,
            "API_KEY_CACHE_TTL": "1",
            "INTROSPECTION_CACHE_TTL": "1",
            "LOG_FORMAT": "json",
            "TASKFLOW_DATA_DIR": str(folder / "data"),
        },
        log_path=folder / "auth-verifier.log",
    )
    yield proc.start()
    proc.stop()


@pytest.fixture
def start_verifier(tmp_path: Path, db_url: str) -> Iterator[StartVerifier]:
    """``start_verifier(sso, **env)`` → the auth-verifier in its own uvicorn process, on this
    test's database, trusting ``sso``; stopped by PID at teardown."""
    started: list[ServiceProcess] = []

    def start(sso: TestIssuer | str, *, port: int | None = None, **env: str) -> ServiceProcess:
        base = {
            "DATABASE_URL": db_url,
            "SSO_URL": sso if isinstance(sso, str) else sso.url,
            "SERVICE_SECRET": SERVICE_SECRET,
            "LOG_FORMAT": "json",
            "TASKFLOW_DATA_DIR": str(tmp_path / "data"),
        }
        proc = ServiceProcess(
            "auth-verifier",
            {**base, **env},
            log_path=tmp_path / f"auth-verifier-{len(started)}.log",
        )
        if port is not None:
            proc.port = port
        started.append(proc)
        return proc.start()

    yield start
    for proc in reversed(started):
        proc.stop()
