"""The services as real processes, wired to each other and to the test SSO, plus the small
API helpers the reliability, security and fuzz tests share."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.support.issuer import TestIssuer
from tests.support.processes import ServiceProcess, release_port, reserve_port

SERVICE_SECRET = "reliability-tests-service-secret"


@dataclass
class Stack:
    """tasks + audit + auth-verifier on loopback ports, sharing one database and one SSO."""

    db_url: str
    issuer: TestIssuer
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, ServiceProcess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("tasks", "audit", "auth-verifier"):
            self.ports.setdefault(name, reserve_port())

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def base_env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.db_url,
            "SSO_URL": self.issuer.url,
            "SERVICE_SECRET": SERVICE_SECRET,
            "TASKS_URL": self.url("tasks"),
            "AUDIT_URL": self.url("audit"),
            "AUTH_VERIFIER_URL": self.url("auth-verifier"),
            "OUTBOX_RELAY_INTERVAL": "0.2",
            "DB_POOL_TIMEOUT": "3",
            "HTTP_TIMEOUT": "2",
            "LOG_FORMAT": "json",
            **self.env,
        }

    def start(self, name: str, **env: str) -> ServiceProcess:
        proc = ServiceProcess(
            name,
            {**self.base_env(), **env},
            port=self.ports[name],
            log_path=self.log_dir / f"{name}-{len(self.procs)}-{uuid.uuid4().hex[:4]}.log",
        )
        self.procs[name] = proc
        return proc.start()

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            proc.stop()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        for port in self.ports.values():
            release_port(port)  # of a service that never started


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class User:
    """A person at the SSO: a token for a tenant, and an httpx client to a service."""

    sub: str
    tenant: str
    token: str

    @property
    def email(self) -> str:
        return f"{self.sub}@example.test"

    def client(self, base_url: str, timeout: float = 15.0) -> httpx.Client:
        return httpx.Client(base_url=base_url, headers=bearer(self.token), timeout=timeout)


def new_user(issuer: TestIssuer, tenant: str | None = None, **claims: Any) -> User:
    sub = f"u-{uuid.uuid4().hex[:10]}"
    tenant = tenant or f"org-{uuid.uuid4().hex[:8]}"
    token = issuer.token(sub, tenant_id=tenant, expires_in=6 * 3600, **claims)
    return User(sub=sub, tenant=tenant, token=token)


def create_project(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    slug = fields.pop("slug", f"p-{uuid.uuid4().hex[:10]}")
    resp = api.post("/api/projects", json={"slug": slug, "name": slug, **fields})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def create_task(api: httpx.Client, project_id: int, **fields: Any) -> dict[str, Any]:
    body = {"title": fields.pop("title", f"t-{uuid.uuid4().hex[:8]}"), **fields}
    resp = api.post(f"/api/projects/{project_id}/tasks", json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


@contextmanager
def admin_connection(url: str) -> Iterator[psycopg.Connection[Any]]:
    """A direct (not pooled, autocommit) connection for assertions about the database."""
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        yield conn


def app_connections(admin_url: str, dbname: str) -> list[dict[str, Any]]:
    """The services' server-side connections to ``dbname`` (pg_stat_activity rows)."""
    with admin_connection(admin_url) as conn:
        cur = conn.execute(
            "SELECT pid, application_name, state, xact_start, query FROM pg_stat_activity"
            " WHERE datname = %s AND application_name LIKE 'taskflow-%%'",
            (dbname,),
        )
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@contextmanager
def running_stack(
    admin_url: str,
    template: str,
    issuer: TestIssuer,
    log_dir: Path,
    services: tuple[str, ...] = ("tasks", "audit"),
    **env: str,
) -> Iterator[Stack]:
    """A stack on a database of its own, for a whole test module (stopped and dropped after)."""
    from tests.support.postgres import create_database, drop_database

    url = create_database(admin_url, template=template)
    stack = Stack(db_url=url, issuer=issuer, log_dir=log_dir, env=dict(env))
    try:
        for name in services:
            stack.start(name)
        yield stack
    finally:
        stack.stop_all()
        drop_database(admin_url, url)


@contextmanager
def running_gateway(
    admin_url: str, template: str, issuer: TestIssuer, **options: object
) -> Iterator[object]:
    """D's e2e stack (nginx in front of the three services) on a database of its own; skips
    (or fails when TASKFLOW_REQUIRE_E2E=1) without nginx."""
    import shutil

    from tests.e2e.conftest import load_render, require_tool, start_stack, stop_stack
    from tests.support.postgres import create_database, drop_database

    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        require_tool("nginx is not installed")
    url = create_database(admin_url, template=template)
    try:
        running = start_stack(str(nginx), load_render(), issuer, url, **options)
        try:
            yield running
        finally:
            stop_stack(running)
    finally:
        drop_database(admin_url, url)
