"""Real uvicorn processes of the services on free loopback ports, stopped by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BOUNDED_HTTPTOOLS = "taskflow_core.http_protocol:HttpToolsProtocol"
ASGI_MODULES = {
    "tasks": "taskflow_tasks.asgi:app",
    "audit": "taskflow_audit.asgi:app",
    "auth-verifier": "taskflow_auth_verifier.asgi:app",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Ports from reserve_port(), each held by a bound socket until its service listens on it. A
# port from free_port() is free again the moment it is returned: another test worker's bind(0)
# could take it before the service (a second or two of start-up later) binds it, and the health
# check would then reach that worker's service (seen once in CI: a 401 "signing key not found"
# from a service trusting another test's SSO). Bound with SO_REUSEADDR and never listening, the
# reservation lets uvicorn (which sets SO_REUSEADDR) bind the port while no bind(0) elsewhere
# gets it.
_RESERVED: dict[int, socket.socket] = {}


def reserve_port() -> int:
    """A loopback port held for a ServiceProcess, released once it listens (or stops)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    _RESERVED[port] = sock
    return port


def release_port(port: int) -> None:
    sock = _RESERVED.pop(port, None)
    if sock is not None:
        sock.close()


def _listens(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` holds the socket listening on 127.0.0.1:``port`` (None where
    /proc cannot tell)."""
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    local = f"0100007F:{port:04X}"
    inodes = {f"socket:[{f[9]}]" for f in (line.split() for line in lines)
              if f[1] == local and f[3] == "0A"}  # fmt: skip
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
        except OSError:
            continue
    return False


@dataclass
class ServiceProcess:
    """One service in its own uvicorn process."""

    name: str
    env: dict[str, str]
    port: int = field(default_factory=reserve_port)
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServiceProcess:
        # As the images run it: uvloop + the bounded httptools protocol unless env says otherwise.
        env = {"UVICORN_HTTP": BOUNDED_HTTPTOOLS, **os.environ, **self.env}
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                ASGI_MODULES[self.name],
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--lifespan",
                "on",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; see {self.log_path}"
                )
            try:
                healthy = httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                healthy = False
            # Healthy, and the answer came from this process, not another on the same port.
            if healthy and _listens(self.proc.pid, self.port) is not False:
                release_port(self.port)
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not become healthy in {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        release_port(self.port)
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


# Settings a developer's shell may carry that would change what `serve all` is given.
_SCRUBBED = (
    "TASKS_URL",
    "AUDIT_URL",
    "AUTH_VERIFIER_URL",
    "JWKS_URL",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "SERVICE_SECRET",
    "DEV_MODE",
    "DEV_ISSUER",
    "ENV",
)


@dataclass
class ServeAll:
    """``taskflow serve all`` as a real process: the three apps, their relay and scheduler
    behind one port (so a stall anywhere stalls /health too). Started is when ``ready_path``
    answers 200."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    ready_path: str = "/health/ready"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServeAll:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        env.update(self.env)
        command = ["serve", "all", "--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "taskflow_cli.main", *command],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve all exited: {self.log_tail()}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"serve all did not become ready in {timeout}s: {self.log_tail()}")

    def log_tail(self, size: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-size:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
