"""A PostgreSQL for the test run, chosen in order: TEST_DATABASE_URL, a testcontainers
PostgreSQL when a Docker engine answers, else an embedded pgserver; and cheap clean databases
cloned from a migrated template."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg


def with_database(url: str, dbname: str) -> str:
    """``url`` pointing at database ``dbname`` instead."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{dbname}", parts.query, parts.fragment))


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def stop_postmaster(data_dir: Path, wait: float = 15.0) -> None:
    """Fast-shutdown the server running in ``data_dir``, if any, and wait for it to exit."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)
    except (OSError, ValueError, IndexError):
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


@contextmanager
def embedded_postgres(data_dir: Path | None = None) -> Iterator[tuple[str, Any]]:
    """An embedded server in ``data_dir`` (a temporary folder by default), stopped on exit."""
    import pgserver

    folder = data_dir or Path(tempfile.mkdtemp(prefix="taskflow-pg-"))
    server = pgserver.get_server(folder, cleanup_mode="stop")
    try:
        yield server.get_uri(), server
    finally:
        server.cleanup()
        stop_postmaster(folder)  # a test may have started it again in the same folder
        if data_dir is None:
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def postgres_for_tests() -> Iterator[str]:
    """The admin URL of the PostgreSQL this test run uses."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    if docker_engine_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
        return
    with embedded_postgres() as (embedded_url, _server):
        yield embedded_url


def create_database(admin_url: str, template: str | None = None) -> str:
    """A new uniquely named database (cloned from ``template`` when given); returns its URL."""
    name = f"tf_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        clause = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{clause}')  # type: ignore[arg-type]
    return with_database(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
