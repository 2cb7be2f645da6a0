"""A PostgreSQL for the test run, chosen in order: TEST_DATABASE_URL, a testcontainers
PostgreSQL when a Docker engine answers, else an embedded pgserver; and cheap clean databases
cloned from a migrated template."""

from __future__ import annotations

import logging
import os
import shutil
import signal
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


# The image of the testcontainers PostgreSQL: the official one unless TEST_POSTGRES_IMAGE names
# another (CI names the stand-in deploy/podman/base-images.sh builds where no registry answers).
DEFAULT_POSTGRES_IMAGE = "postgres:16-alpine"
log = logging.getLogger("taskflow.tests.postgres")
# Which of the three sources this process's postgres_for_tests() took (for the test that
# checks CI really exercised the one it asked for).
chosen_source: str | None = None


def docker_engine_answers() -> bool:
    """Whether a Docker API answers where testcontainers will look: ``DOCKER_HOST`` (podman's
    socket, say) or the default socket. Asked through the Docker SDK testcontainers uses, not
    the ``docker`` command, which may be absent or point elsewhere."""
    try:
        import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=5)
    except Exception:  # DockerException: no socket, bad DOCKER_HOST
        return False
    try:
        return bool(client.ping())
    except Exception:  # refused, timed out, not a Docker API
        return False
    finally:
        client.close()


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
    global chosen_source
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        chosen_source = "TEST_DATABASE_URL"
        yield url
        return
    if docker_engine_answers():
        from testcontainers.community.postgres import PostgresContainer

        image = os.environ.get("TEST_POSTGRES_IMAGE") or DEFAULT_POSTGRES_IMAGE
        with PostgresContainer(image, driver=None) as container:
            chosen_source = "testcontainers"
            url = container.get_connection_url()
            log.warning("test database: testcontainers PostgreSQL (%s) at %s", image, url)
            yield url
        return
    with embedded_postgres() as (embedded_url, _server):
        chosen_source = "embedded"
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
