"""The audit path as it runs in production: tasks service(s) with their outbox relay, the audit
service, real HTTP between them with service credentials, users with real JWTs."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from tests.support.issuer import TestIssuer
from tests.support.processes import ServiceProcess, release_port, reserve_port


@dataclass
class AuditStack:
    """Ports fixed up front so each service can be told where the other lives, and started,
    stopped and restarted (same port) at will. Every process is stopped by PID at teardown."""

    db_url: str
    issuer: TestIssuer
    log_dir: Path
    audit_port: int = field(default_factory=reserve_port)
    tasks_port: int = field(default_factory=reserve_port)  # of the first tasks process
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    tasks: list[ServiceProcess] = field(default_factory=list)
    audit: ServiceProcess | None = None

    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.db_url,
            "SSO_URL": self.issuer.url,
            "SERVICE_SECRET": self.secret,
            "AUDIT_URL": f"http://127.0.0.1:{self.audit_port}",
            "TASKS_URL": f"http://127.0.0.1:{self.tasks_port}",
            "OUTBOX_RELAY_INTERVAL": "0.1",
            "LOG_FORMAT": "json",
        }

    def start_tasks(self, **overrides: str) -> ServiceProcess:
        proc = ServiceProcess(
            "tasks",
            {**self.env(), **overrides},
            port=reserve_port() if self.tasks else self.tasks_port,
            log_path=self.log_dir / f"tasks-{len(self.tasks)}.log",
        )
        self.tasks.append(proc)
        return proc.start()

    def start_audit(self) -> ServiceProcess:
        if self.audit is None:
            self.audit = ServiceProcess(
                "audit", self.env(), port=self.audit_port, log_path=self.log_dir / "audit.log"
            )
        return self.audit.start()

    @property
    def tasks_url(self) -> str:
        return f"http://127.0.0.1:{self.tasks_port}"

    @property
    def audit_url(self) -> str:
        return f"http://127.0.0.1:{self.audit_port}"

    def stop(self) -> None:
        for proc in [*self.tasks, *([self.audit] if self.audit else [])]:
            proc.stop()
        release_port(self.audit_port)  # if it never started
        release_port(self.tasks_port)


@pytest.fixture
def stack(db_url: str, issuer: TestIssuer, tmp_path: Path) -> Iterator[AuditStack]:
    s = AuditStack(db_url, issuer, tmp_path)
    yield s
    s.stop()


@dataclass
class User:
    """Someone with a token for one tenant; ``tasks`` and ``audit`` are the two services
    (the gateway would route the same paths to them)."""

    sub: str
    tenant: str
    tasks: httpx.Client
    audit: httpx.Client

    def new_project(self) -> int:
        resp = self.tasks.post(
            "/api/projects", json={"name": "Audit", "slug": f"a-{uuid.uuid4().hex[:10]}"}
        )
        assert resp.status_code == 201, resp.text
        return int(resp.json()["id"])

    def new_task(self, project_id: int, title: str = "A task") -> int:
        resp = self.tasks.post(f"/api/projects/{project_id}/tasks", json={"title": title})
        assert resp.status_code == 201, resp.text
        return int(resp.json()["id"])

    def add_member(self, project_id: int, other: User) -> None:
        assert other.tasks.get("/api/projects").status_code == 200  # provisioned
        resp = self.tasks.post(f"/api/projects/{project_id}/members", json={"user_id": other.sub})
        assert resp.status_code == 201, resp.text

    def all_pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every entry of an audit list, following the cursor."""
        rows: list[dict[str, Any]] = []
        params = {"limit": 100, **params}
        while True:
            resp = self.audit.get(path, params=params)
            assert resp.status_code == 200, resp.text
            rows.extend(resp.json())
            cursor = resp.headers.get("X-Next-Cursor")
            if not cursor:
                return rows
            params = {**params, "cursor": cursor}


MakeUser = Callable[..., User]


@pytest.fixture
def make_user(stack: AuditStack, issuer: TestIssuer) -> Iterator[MakeUser]:
    clients: list[httpx.Client] = []

    def make(tenant: str = "tenant-a", **claims: Any) -> User:
        sub = f"user-{uuid.uuid4().hex[:10]}"
        headers = {"Authorization": f"Bearer {issuer.token(sub, tenant_id=tenant, **claims)}"}
        tasks = httpx.Client(base_url=stack.tasks_url, headers=headers, timeout=30.0)
        audit = httpx.Client(base_url=stack.audit_url, headers=headers, timeout=30.0)
        clients.extend([tasks, audit])
        return User(sub, tenant, tasks, audit)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(
        db_url, row_factory=dict_row, autocommit=True, prepare_threshold=None
    ) as conn:  # no prepared statements: the URL may be a PgBouncer in transaction mode
        yield conn


def outbox_ids(db: psycopg.Connection[dict[str, Any]]) -> list[str]:
    rows = db.execute("SELECT event_id FROM tasks.outbox ORDER BY id").fetchall()
    return [str(r["event_id"]) for r in rows]


def stored_ids(db: psycopg.Connection[dict[str, Any]]) -> list[str]:
    rows = db.execute("SELECT event_id FROM audit.entries ORDER BY id").fetchall()
    return [str(r["event_id"]) for r in rows]


def wait_delivered(db: psycopg.Connection[dict[str, Any]], timeout: float = 60.0) -> None:
    """Until the outbox has nothing pending (the relay delivered everything)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = db.execute(
            "SELECT count(*) AS n FROM tasks.outbox WHERE delivered_at IS NULL"
        ).fetchone()
        if row is not None and row["n"] == 0:
            return
        time.sleep(0.1)
    raise AssertionError("the outbox was not drained in time")
