"""Every edge that verifies tokens starts from its last good key set when it is restarted while
the SSO is down: `taskflow serve all`, and the tasks and audit services on their own (the
auth-verifier's own restart is covered in tests/integration/auth/test_jwks_resilience.py).

Real processes, a real test SSO that is stopped, the same database across the restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.reliability.stack import Stack, bearer, new_user
from tests.support.issuer import TestIssuer, generate_key
from tests.support.processes import free_port

# Where each part of the stack checks a bearer token: a tasks route, an audit route (which also
# asks the tasks service, with a service credential), the verifier's forward-auth.
TASKS_ROUTE = "/api/projects"
AUDIT_ROUTE = "/api/audit"
VERIFY_ROUTE = "/verify"
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


@pytest.fixture
def sso() -> Iterator[TestIssuer]:
    """A test SSO of this test only: it is stopped half-way."""
    own = TestIssuer().start()
    yield own
    own.stop()


@dataclass
class ServeAll:
    """``taskflow serve all`` as a real process (the three apps behind one port)."""

    env: dict[str, str]
    log_path: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServeAll:
        self.port = free_port()
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
            assert self.proc.poll() is None, self.log_path.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"serve all did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def get(url: str, token: str) -> httpx.Response:
    return httpx.get(url, headers=bearer(token), timeout=15.0)


def assert_verifies(base_url: str, routes: tuple[str, ...], token: str) -> None:
    for route in routes:
        response = get(base_url + route, token)
        assert response.status_code == 200, (route, response.status_code, response.text)


def test_serve_all_restarted_while_sso_is_down_verifies_known_keys(
    db_url: str, sso: TestIssuer, tmp_path: Path
) -> None:
    routes = (TASKS_ROUTE, AUDIT_ROUTE, VERIFY_ROUTE)
    user = new_user(sso)
    env = {"DATABASE_URL": db_url, "SSO_URL": sso.url, "LOG_FORMAT": "json"}
    first = ServeAll(env, tmp_path / "serve-all-1.log").start()
    try:
        assert_verifies(first.url, routes, user.token)  # every app fetched the SSO's keys
    finally:
        first.stop()

    sso.stop()
    second = ServeAll(env, tmp_path / "serve-all-2.log").start()
    try:
        assert_verifies(second.url, routes, user.token)
        # A token signed with a key nobody knew is still refused, not waved through.
        stranger = sso.token("u-x", key=generate_key("RS256", kid="never-published"))
        for route in routes:
            assert get(second.url + route, stranger).status_code == 401, route
    finally:
        second.stop()


def test_tasks_alone_restarted_while_sso_is_down_verifies_known_keys(
    db_url: str, sso: TestIssuer, tmp_path: Path
) -> None:
    stack = Stack(db_url=db_url, issuer=sso, log_dir=tmp_path)
    user = new_user(sso, alg="ES256")
    try:
        tasks = stack.start("tasks")
        assert_verifies(tasks.url, (TASKS_ROUTE,), user.token)
        stack.stop("tasks")
        sso.stop()
        tasks = stack.start("tasks")
        assert_verifies(tasks.url, (TASKS_ROUTE,), user.token)
    finally:
        stack.stop_all()


def test_audit_alone_restarted_while_sso_is_down_verifies_known_keys(
    db_url: str, sso: TestIssuer, tmp_path: Path
) -> None:
    stack = Stack(db_url=db_url, issuer=sso, log_dir=tmp_path)
    user = new_user(sso)
    try:
        stack.start("tasks")  # audit asks it which projects a caller reads
        audit = stack.start("audit")
        assert_verifies(audit.url, (AUDIT_ROUTE,), user.token)
        stack.stop("audit")
        sso.stop()
        audit = stack.start("audit")
        assert_verifies(audit.url, (AUDIT_ROUTE,), user.token)
    finally:
        stack.stop_all()
