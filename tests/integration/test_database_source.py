"""Which PostgreSQL the run uses (tests/support/postgres.py): TEST_DATABASE_URL, a
testcontainers PostgreSQL when a Docker API answers (podman's socket through DOCKER_HOST in CI),
otherwise an embedded one. CI runs the integration suite once with TEST_DATABASE_URL unset and
podman answering, and sets TASKFLOW_EXPECT_TEST_DATABASE=testcontainers so that a silent fall
back to the embedded server fails here instead of passing unnoticed."""

from __future__ import annotations

import os

import psycopg
import pytest

from tests.support import postgres


def test_a_docker_host_where_nothing_answers_is_no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/taskflow-test/docker.sock")
    assert postgres.docker_engine_answers() is False


def test_the_run_uses_the_postgresql_it_was_asked_for(pg_admin_url: str) -> None:
    expected = os.environ.get("TASKFLOW_EXPECT_TEST_DATABASE")
    if not expected:
        pytest.skip("TASKFLOW_EXPECT_TEST_DATABASE is unset (CI sets it where it checks a source)")
    assert postgres.chosen_source == expected
    if expected != "testcontainers":
        return
    with psycopg.connect(pg_admin_url, connect_timeout=5) as conn:
        row = conn.execute("SELECT inet_server_addr()::text, current_setting('data_directory')")
        server_address, data_directory = row.fetchone() or ("", "")
    # The server sees the connection on the container's own network, not on the machine's
    # loopback: it is the container, reached through its published port.
    assert not server_address.startswith("127."), server_address
    assert data_directory == "/var/lib/postgresql/data"
