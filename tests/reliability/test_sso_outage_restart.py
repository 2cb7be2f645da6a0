"""Every edge that verifies tokens starts from its last good key set when it is restarted while
the SSO is down: `taskflow serve all`, and the tasks and audit services on their own (the
auth-verifier's own restart is covered in tests/integration/auth/test_jwks_resilience.py).

Real processes, a real test SSO that is stopped, the same database across the restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.reliability.stack import Stack, bearer, new_user
from tests.support.issuer import TestIssuer, generate_key
from tests.support.processes import ServeAll

# Where each part of the stack checks a bearer token: a tasks route, an audit route (which also
# asks the tasks service, with a service credential), the verifier's forward-auth.
TASKS_ROUTE = "/api/projects"
AUDIT_ROUTE = "/api/audit"
VERIFY_ROUTE = "/verify"


@pytest.fixture
def sso() -> Iterator[TestIssuer]:
    """A test SSO of this test only: it is stopped half-way."""
    own = TestIssuer().start()
    yield own
    own.stop()


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
    first = ServeAll(env, tmp_path / "serve-all-1.log", ready_path="/health").start()
    try:
        assert_verifies(first.url, routes, user.token)  # every app fetched the SSO's keys
    finally:
        first.stop()

    sso.stop()
    second = ServeAll(env, tmp_path / "serve-all-2.log", ready_path="/health").start()
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
