"""A real PgBouncer in transaction mode (Neon's pooled endpoint) in front of the test PostgreSQL.

Started as a foreground child process on a free loopback port and stopped by PID. Clients reach
it through a URL whose host is ``tf-pooler.localhost`` with ``hostaddr=127.0.0.1``: the host
name makes the db module treat it exactly like a Neon ``-pooler`` host (``prepare_threshold=None``,
no ``options`` startup parameter), the address avoids any DNS lookup.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import psycopg

from tests.support.processes import free_port

POOLER_HOST = "tf-pooler.localhost"  # first label contains "-pooler": treated as pooled


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )


def _server_params(admin_url: str) -> dict[str, str]:
    """host/port/user/password of the PostgreSQL ``admin_url`` points at, for pgbouncer.ini."""
    parts = urlsplit(admin_url)
    query = dict(parse_qsl(parts.query))
    host = query.get("host") or parts.hostname or "127.0.0.1"
    params = {
        "host": host,
        "port": str(query.get("port") or parts.port or 5432),
        "user": parts.username or query.get("user") or "postgres",
    }
    password = parts.password or query.get("password")
    if password:
        params["password"] = password
    return params


@dataclass
class PgBouncer:
    """One pgbouncer process in transaction mode, forwarding every database name."""

    admin_url: str
    port: int = field(default_factory=free_port)
    pool_size: int = 20
    proc: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None

    @property
    def log_path(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "pgbouncer.log"

    def url_for(self, url: str) -> str:
        """``url`` (a database on the test server) reached through this pgbouncer."""
        parts = urlsplit(url)
        user = parts.username or "postgres"
        netloc = f"{user}@{POOLER_HOST}:{self.port}"
        return urlunsplit(("postgresql", netloc, parts.path, "hostaddr=127.0.0.1", ""))

    def _config(self) -> str:
        server = " ".join(f"{k}={v}" for k, v in _server_params(self.admin_url).items())
        return "\n".join(
            [
                "[databases]",
                f"* = {server}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {self.port}",
                "unix_socket_dir =",
                "auth_type = any",
                "admin_users = postgres, pgbouncer",
                "pool_mode = transaction",
                "max_client_conn = 1000",
                f"default_pool_size = {self.pool_size}",
                "max_db_connections = 0",
                # Neon drops server connections; come back quickly after an outage.
                "server_login_retry = 1",
                "server_connect_timeout = 5",
                "query_wait_timeout = 30",
                "log_connections = 0",
                "log_disconnections = 0",
                "log_pooler_errors = 1",
                "stats_period = 3600",
                "",
            ]
        )

    def start(self, timeout: float = 15.0) -> PgBouncer:
        binary = pgbouncer_binary()
        if binary is None:
            raise RuntimeError("pgbouncer is not installed (apt-get install pgbouncer)")
        self.workdir = Path(tempfile.mkdtemp(prefix="taskflow-pgbouncer-"))
        ini = self.workdir / "pgbouncer.ini"
        ini.write_text(self._config())
        os.chmod(self.workdir, 0o755)
        os.chmod(ini, 0o644)
        command = [binary]
        if os.geteuid() == 0:
            # PgBouncer refuses to run as root; drop to an unprivileged user after reading config.
            command += ["-u", "nobody"]
        command.append(str(ini))
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"pgbouncer exited with {self.proc.returncode}: {self.log_path.read_text()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"pgbouncer did not listen in {timeout}s: {self.log_path}")
        # The first server login proves the whole chain (config, auth, forwarding).
        with psycopg.connect(
            self.url_for(self.admin_url), prepare_threshold=None, connect_timeout=5
        ) as conn:
            conn.execute("SELECT 1")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # SIGINT: safe shutdown
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def show(self, what: str) -> list[dict[str, object]]:
        """``SHOW <what>`` on the pgbouncer admin console (``pools``, ``clients``, ...)."""
        url = f"postgresql://pgbouncer@127.0.0.1:{self.port}/pgbouncer"
        with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
            cur = conn.execute(f"SHOW {what}")  # type: ignore[arg-type]
            names = [c.name for c in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


_shared: PgBouncer | None = None


def shared_pgbouncer(config: object, admin_url: str) -> PgBouncer:
    """One pgbouncer for the whole test run, stopped when pytest's ``config`` is cleaned up."""
    global _shared
    if _shared is None:
        _shared = PgBouncer(admin_url).start()
        config.add_cleanup(_stop_shared)  # type: ignore[attr-defined]
    return _shared


def _stop_shared() -> None:
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None


def via_pgbouncer_requested() -> bool:
    """``TASKFLOW_VIA_PGBOUNCER=1``: every ``db_url`` of the run goes through pgbouncer."""
    return os.environ.get("TASKFLOW_VIA_PGBOUNCER", "").strip().lower() in {"1", "true", "yes"}


def maybe_via_pgbouncer(config: object, admin_url: str, url: str) -> str:
    """``url`` through the shared pgbouncer when the run asks for it, else ``url`` unchanged."""
    if not via_pgbouncer_requested():
        return url
    return shared_pgbouncer(config, admin_url).url_for(url)
