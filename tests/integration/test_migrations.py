"""`taskflow migrate` applies each migration once: twice in a row, and from two processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from taskflow_cli.stack import SERVICES
from taskflow_core.migrations import migration_files

from tests.support.postgres import create_database, drop_database


def _migrate(url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "taskflow_cli.main", "migrate"],
        env={**os.environ, "DATABASE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _recorded(url: str) -> dict[str, list[str]]:
    with psycopg.connect(url) as conn:
        return {
            spec.schema: [
                row[0]
                for row in conn.execute(
                    f'SELECT version FROM "{spec.schema}".schema_migrations ORDER BY version'  # type: ignore[arg-type]
                )
            ]
            for spec in SERVICES.values()
        }


def _expected() -> dict[str, list[str]]:
    return {
        spec.schema: [version for version, _ in migration_files(spec.package)]
        for spec in SERVICES.values()
    }


@pytest.fixture
def empty_db(pg_admin_url: str) -> Iterator[str]:
    url = create_database(pg_admin_url)
    yield url
    drop_database(pg_admin_url, url)


def test_migrate_twice_in_a_row(empty_db: str) -> None:
    first = _migrate(empty_db)
    _out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert _recorded(empty_db) == _expected()
    second = _migrate(empty_db)
    out2, err2 = second.communicate(timeout=120)
    assert second.returncode == 0, err2
    assert "tasks: 0 applied" in out2
    assert _recorded(empty_db) == _expected()


def test_migrate_from_two_processes_at_once(empty_db: str) -> None:
    procs = [_migrate(empty_db), _migrate(empty_db)]
    results = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in results]
    assert _recorded(empty_db) == _expected()
    # Between them the two runs applied every migration exactly once.
    total = sum(len(v) for v in _expected().values())
    applied = 0
    for out, _ in results:
        for line in out.splitlines():
            applied += int(line.split(": ")[1].split(" ")[0])
    assert applied == total


def test_migrate_without_database_url_explains() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    proc = subprocess.run(
        [sys.executable, "-m", "taskflow_cli.main", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "DATABASE_URL is required" in proc.stderr
