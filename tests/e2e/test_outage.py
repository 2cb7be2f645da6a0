"""One service process dies: only what needs it fails, in the JSON error shape, and it is
served again as soon as the process is back, without restarting or reloading nginx."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.test_gateway import assert_error_shape

pytestmark = pytest.mark.e2e

RECOVERY_WAIT_S = 20.0


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.url.path}: {response.text}"
    return response.json()


def eventually(check: Any, what: str) -> Any:
    deadline = time.monotonic() + RECOVERY_WAIT_S
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen; last: {last!r}")


def test_a_dead_service_fails_only_its_routes_and_recovers(own_stack: Stack) -> None:
    stack = own_stack
    nginx_pid = stack.nginx.proc.pid if stack.nginx.proc else None
    with stack.client(stack.token(f"ops-{uuid.uuid4().hex[:8]}")) as client:
        project = ok(
            client.post("/api/projects", json={"slug": f"o-{uuid.uuid4().hex[:8]}", "name": "O"}),
            201,
        )
        task = ok(client.post(f"/api/projects/{project['id']}/tasks", json={"title": "t"}), 201)
        tid = task["id"]
        ok(client.get(f"/api/tasks/{tid}/audit"))

        # Audit down: its routes are 502 JSON; tasks keeps working and keeps the events.
        stack.kill_service("audit")
        down = client.get(f"/api/tasks/{tid}/audit")
        assert_error_shape(down, 502)
        assert down.headers.get("Retry-After")
        assert_error_shape(client.get(f"/api/projects/{project['id']}/audit"), 502)
        ok(client.get(f"/api/tasks/{tid}"))
        started = ok(client.patch(f"/api/tasks/{tid}/status", json={"status": "in_progress"}))
        assert started["status"] == "in_progress"
        ok(client.get("/jwks"))

        stack.start_service("audit")

        def audit_has_the_status_change() -> bool:
            response = client.get(f"/api/tasks/{tid}/audit")
            return response.status_code == 200 and any(
                e["action"] == "status_changed" for e in response.json()
            )

        eventually(audit_has_the_status_change, "audit back with the event written while down")

        # Tasks down: its routes (and the default ones: docs, readiness) are 502 JSON; the
        # gateway and the other services still answer.
        stack.stop_service("tasks")
        assert_error_shape(client.get(f"/api/tasks/{tid}"), 502)
        assert_error_shape(client.get("/api/projects"), 502)
        assert_error_shape(httpx.get(f"{stack.url}/health/ready"), 502)
        assert httpx.get(f"{stack.url}/health").status_code == 200
        ok(client.get("/jwks"))
        audit_view = client.get(f"/api/tasks/{tid}/audit")
        # The audit service itself is reached (it may need tasks to authorise the read).
        assert audit_view.status_code != 502, audit_view.text
        assert audit_view.status_code in (200, 503), audit_view.text
        stack.start_service("tasks")
        eventually(lambda: client.get(f"/api/tasks/{tid}").status_code == 200, "tasks back")
        ok(client.get("/api/projects"))

        # Verifier down: a credential the gateway has not just verified cannot be (503 JSON,
        # not a 500), while one it verified in the last seconds still works (the service
        # verifies it anyway); public paths still work. Back up, /api works again.
        stack.stop_service("auth-verifier")
        ok(client.get(f"/api/tasks/{tid}"))
        with stack.client(stack.token(f"new-{uuid.uuid4().hex[:8]}")) as newcomer:
            unavailable = newcomer.get("/api/projects")
            body = assert_error_shape(unavailable, 503)
            assert "Authentication" in body["error"]
            assert_error_shape(client.get("/jwks"), 502)
            assert httpx.get(f"{stack.url}/docs").status_code == 200
            stack.start_service("auth-verifier")
            eventually(lambda: newcomer.get("/api/projects").status_code == 200, "verifier back")

    assert stack.nginx.proc is not None and stack.nginx.proc.poll() is None
    assert stack.nginx.proc.pid == nginx_pid  # the same nginx all along
