"""Fixtures for fault injection: a real PgBouncer, the wired service stack, misbehaving peers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.pgbouncer import PgBouncer, pgbouncer_binary, shared_pgbouncer
from tests.reliability.stack import Stack
from tests.support.issuer import TestIssuer
from tests.support.tools import require_tool


@pytest.fixture(scope="session")
def pgbouncer(request: pytest.FixtureRequest, pg_admin_url: str) -> PgBouncer:
    """A real PgBouncer in transaction mode in front of the test PostgreSQL (one per run)."""
    require_pgbouncer(pg_admin_url)
    return shared_pgbouncer(request.config, pg_admin_url)


def require_pgbouncer(pg_admin_url: str) -> None:
    """Skip (fail in CI) when PgBouncer cannot run in front of the test PostgreSQL."""
    if pgbouncer_binary() is None:
        require_tool("pgbouncer is not installed: apt-get install pgbouncer (CI installs it)")
    if "host=/" in pg_admin_url:
        # PgBouncer drops root for `nobody`, who cannot enter the embedded server's private
        # socket folder; CI runs these tests against its TCP PostgreSQL.
        require_tool("PgBouncer tests need a TCP PostgreSQL (set TEST_DATABASE_URL)")


@pytest.fixture
def stack(db_url: str, issuer: TestIssuer, tmp_path: Path) -> Iterator[Stack]:
    """The three services wired together (start the ones a test needs with ``stack.start``)."""
    services = Stack(db_url=db_url, issuer=issuer, log_dir=tmp_path)
    yield services
    services.stop_all()
