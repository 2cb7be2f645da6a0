"""Fixtures of the import tests: the importer as a real process, the tasks and audit services
(relay included) on real HTTP, and a user with a real token from the test SSO."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from tests.support.issuer import TestIssuer
from tests.support.processes import ServiceProcess, release_port, reserve_port

TENANT = "tenant-import"
OWNER_SUB = "owner-sub-0001"


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_import(db_url: str, *args: str | Path, **env: str) -> Run:
    """``taskflow import-cli ARGS`` in its own process, against ``db_url``."""
    proc = subprocess.run(
        [sys.executable, "-m", "taskflow_cli.main", "import-cli", *map(str, args)],
        env={**os.environ, "DATABASE_URL": db_url, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class Services:
    """The tasks service (with its outbox relay) and the audit service, each told where the
    other lives; stopped by PID at teardown."""

    db_url: str
    issuer: TestIssuer
    log_dir: Path
    audit_port: int = field(default_factory=reserve_port)
    tasks_port: int = field(default_factory=reserve_port)
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    procs: list[ServiceProcess] = field(default_factory=list)

    def start(self) -> Services:
        env = {
            "DATABASE_URL": self.db_url,
            "SSO_URL": self.issuer.url,
            "SERVICE_SECRET": self.secret,
            "AUDIT_URL": f"http://127.0.0.1:{self.audit_port}",
            "TASKS_URL": f"http://127.0.0.1:{self.tasks_port}",
            "OUTBOX_RELAY_INTERVAL": "0.1",
            "LOG_FORMAT": "json",
        }
        for name, port in (("audit", self.audit_port), ("tasks", self.tasks_port)):
            proc = ServiceProcess(name, env, port=port, log_path=self.log_dir / f"{name}.log")
            self.procs.append(proc)
            proc.start()
        return self

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        release_port(self.audit_port)  # if it never started
        release_port(self.tasks_port)

    def client(self, service: str, sub: str = OWNER_SUB, tenant: str = TENANT) -> httpx.Client:
        port = self.tasks_port if service == "tasks" else self.audit_port
        token = self.issuer.token(sub, tenant_id=tenant)
        return httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30.0,
        )


@pytest.fixture
def services(db_url: str, issuer: TestIssuer, tmp_path: Path) -> Iterator[Services]:
    s = Services(db_url, issuer, tmp_path)
    yield s
    s.stop()


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(
        db_url, row_factory=dict_row, autocommit=True, prepare_threshold=None
    ) as conn:
        yield conn


def wait_delivered(db: psycopg.Connection[dict[str, Any]], timeout: float = 120.0) -> None:
    """Until the relay has delivered every outbox event to the audit service."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = db.execute("SELECT count(*) AS n FROM tasks.outbox WHERE delivered_at IS NULL")
        counted = row.fetchone()
        if counted is not None and counted["n"] == 0:
            return
        time.sleep(0.2)
    raise AssertionError("the outbox was not drained in time")


COUNTED = {
    "workers": "SELECT count(*) AS n FROM tasks.workers",
    "projects": "SELECT count(*) AS n FROM tasks.projects",
    "members": "SELECT count(*) AS n FROM tasks.project_members",
    "tasks": "SELECT count(*) AS n FROM tasks.tasks",
    "outbox": "SELECT count(*) AS n FROM tasks.outbox",
    "audit": "SELECT count(*) AS n FROM audit.entries",
}


def counts(db: psycopg.Connection[dict[str, Any]]) -> dict[str, int]:
    result = {}
    for name, sql in COUNTED.items():
        row = db.execute(sql).fetchone()
        assert row is not None
        result[name] = int(row["n"])
    return result
