"""The stack under test: a fresh PostgreSQL database, the test SSO issuer, the three services and
the control as pinned uvicorn processes, and (optionally) the nginx gateway in front."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench.procs import (
    DEFAULT_STACK,
    DRIVER_CPU,
    SERVICE_CPU,
    BenchError,
    Managed,
    ProcessRegistry,
    cpu_count,
    free_port,
    pin,
    uvicorn_argv,
    wait_until_healthy,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

ASGI_MODULES = {
    "tasks": "taskflow_tasks.asgi:app",
    "audit": "taskflow_audit.asgi:app",
    "auth-verifier": "taskflow_auth_verifier.asgi:app",
    "control": "bench.control_app:app",
}
SERVICE_NAMES = ("tasks", "audit", "auth-verifier")


def ensure_repo_on_path() -> None:
    """bench/ and tests/support/ import as packages from the repository root."""
    root = str(REPO_ROOT)
    if root not in sys.path:
        sys.path.insert(0, root)


def admin_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_ADMIN_URL


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{dbname}", parts.query, parts.fragment))


def database_exists(admin: str, name: str) -> bool:
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def recreate_database(admin: str, name: str) -> str:
    """Drop and create database ``name`` on the server of ``admin``; return its URL."""
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        raise BenchError(
            f"PostgreSQL at {urlsplit(admin).netloc} is not reachable ({exc}). Set DATABASE_URL "
            f"to a server where this user may create databases."
        ) from exc
    return with_database(admin, name)


def migrate(database_url: str, log_dir: Path) -> None:
    """``taskflow migrate`` against the bench database (the documented way)."""
    log_path = log_dir / "migrate.log"
    done = subprocess.run(
        [sys.executable, "-m", "taskflow_cli.main", "migrate"],
        env={**os.environ, "DATABASE_URL": database_url, "LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO_ROOT,
    )
    log_path.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise BenchError(f"taskflow migrate failed ({done.returncode}):\n{done.stderr[-3000:]}")


def pin_database_backends(database_url: str, cpu: int = DRIVER_CPU) -> int:
    """Move the PostgreSQL backends serving ``database_url``'s database to the driver CPU, so
    the service core runs only the service. Only backends of the bench database are moved; the
    server's other processes are left alone. Returns how many were pinned."""
    if cpu_count() <= cpu:
        return 0
    dbname = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        ).fetchall()
    return sum(pin(int(row[0]), cpu) for row in rows)


@dataclass
class Service:
    name: str
    port: int
    managed: Managed | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.managed is not None
        return self.managed.pid


@dataclass
class Stack:
    """Everything started for one benchmark run."""

    registry: ProcessRegistry
    database_url: str
    log_level: str = "INFO"
    pool_max_size: int = 10
    services: dict[str, Service] = field(default_factory=dict)
    issuer: Any = None
    service_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    gateway: Any = None
    pin: bool = True  # services on SERVICE_CPU (the benchmark); False lets the OS place them
    server_stack: str = DEFAULT_STACK  # the services' uvicorn --loop/--http (SERVER_STACKS)
    control_stack: str = DEFAULT_STACK  # the control's

    def start_issuer(self) -> Any:
        ensure_repo_on_path()
        from tests.support.issuer import TestIssuer

        self.issuer = TestIssuer().start()
        return self.issuer

    def stop_issuer(self) -> None:
        if self.issuer is not None:
            self.issuer.stop()
            self.issuer = None

    def service_env(self) -> dict[str, str]:
        assert self.issuer is not None, "start the issuer first"
        ports = {name: self.services[name].port for name in SERVICE_NAMES}
        return {
            "DATABASE_URL": self.database_url,
            "SSO_URL": self.issuer.url,
            "JWKS_URL": self.issuer.jwks_url,
            "TASKS_URL": f"http://127.0.0.1:{ports['tasks']}",
            "AUDIT_URL": f"http://127.0.0.1:{ports['audit']}",
            "AUTH_VERIFIER_URL": f"http://127.0.0.1:{ports['auth-verifier']}",
            "SERVICE_SECRET": self.service_secret,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": self.log_level,
            "DB_POOL_MAX_SIZE": str(self.pool_max_size),
            # One token drives thousands of requests a second here: no per-credential limit.
            "RATE_LIMIT_PER_MINUTE": "0",
            "ENV": "benchmark",
            "PYTHONPATH": str(REPO_ROOT),
        }

    def start_services(self, names: tuple[str, ...] = (*SERVICE_NAMES, "control")) -> None:
        for name in (*SERVICE_NAMES, "control"):
            self.services.setdefault(name, Service(name, free_port()))
        env = self.service_env()
        for name in names:
            service = self.services[name]
            extra = {"CONTROL_DATABASE_URL": self.database_url} if name == "control" else {}
            service.managed = self.registry.start(
                name,
                uvicorn_argv(
                    ASGI_MODULES[name],
                    service.port,
                    self.control_stack if name == "control" else self.server_stack,
                    bounded_http=name != "control",
                ),
                env={**env, **extra},
                cpu=SERVICE_CPU if self.pin else None,
                cwd=REPO_ROOT,
            )
        for name in names:
            service = self.services[name]
            assert service.managed is not None
            wait_until_healthy(service.managed, f"{service.url}/health", timeout=60)

    def running(self) -> dict[str, Service]:
        return {n: s for n, s in self.services.items() if s.managed and s.managed.alive()}
