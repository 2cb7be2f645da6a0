"""What a client of the public gateway sees: authentication at the edge, identity that cannot be
spoofed, the JSON error shape for the gateway's own answers, request ids, CORS, gzip, and the
internal paths it never exposes."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

ERROR_KEYS = {"error", "detail", "status_code", "type", "title", "status"}
ORIGIN = "http://localhost:3000"


def assert_error_shape(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) >= ERROR_KEYS, body
    assert body["status_code"] == status and body["status"] == status
    assert response.headers.get("X-Request-Id")
    return dict(body)


def new_slug(prefix: str = "gw") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_gateway_health_answers_itself(stack: Stack) -> None:
    response = httpx.get(f"{stack.url}/health")
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


def test_no_token_is_401_with_challenge_and_json_error(stack: Stack) -> None:
    response = httpx.get(f"{stack.url}/api/projects")
    body = assert_error_shape(response, 401)
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert body["error"]


def test_bad_token_is_401_with_the_verifiers_challenge(stack: Stack) -> None:
    response = httpx.get(
        f"{stack.url}/api/tasks/recent", headers={"Authorization": "Bearer not-a-jwt"}
    )
    assert_error_shape(response, 401)
    challenges = response.headers.get_list("WWW-Authenticate")
    assert len(challenges) == 1, challenges  # the verifier's, not a second default one
    assert challenges[0].lower().startswith("bearer")


def test_a_client_cannot_claim_another_identity(stack: Stack) -> None:
    """X-User-Id and friends sent by the client are replaced by the verified identity."""
    me = f"user-{uuid.uuid4().hex[:8]}"
    forged = {
        "X-User-Id": "someone-else",
        "X-User-Email": "someone-else@example.test",
        "X-User-Name": "Someone Else",
        "X-Tenant-Id": "another-tenant",
        "X-Actor-Type": "service",
        "X-Client-Id": "forged-client",
    }
    with stack.client(stack.token(me)) as client:
        created = client.post(
            "/api/projects", json={"slug": new_slug(), "name": "Mine"}, headers=forged
        )
        assert created.status_code == 201, created.text
        project = created.json()
        assert project["owner_id"] == me
        assert project["tenant_id"] != "another-tenant"
        # Listed as mine, read back as mine.
        listed = client.get("/api/projects", headers=forged).json()
        assert project["id"] in [p["id"] for p in listed]
    with stack.client(stack.token("someone-else")) as other:
        seen = other.get(f"/api/projects/{project['id']}")
        assert seen.status_code in (403, 404), seen.text  # not someone-else's project


def verifier_checks(stack: Stack) -> int:
    """How many /verify requests the auth-verifier has answered (its access lines)."""
    lines = (stack.logs / "auth-verifier.log").read_text(errors="replace").splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    return sum(1 for e in entries if e.get("event") == "request" and e.get("path") == "/verify")


def test_a_verified_credential_is_not_checked_again_for_a_few_seconds(stack: Stack) -> None:
    """nginx reuses the verifier's 200 per credential (the services still verify every token);
    a refused credential is asked about every time, and each user still gets their own data."""
    alice, bob = stack.token(f"user-{uuid.uuid4().hex[:8]}"), stack.token()
    with stack.client(alice) as as_alice, stack.client(bob) as as_bob:
        mine = as_alice.post("/api/projects", json={"slug": new_slug(), "name": "Alice's"})
        assert mine.status_code == 201, mine.text
        before = verifier_checks(stack)
        for _ in range(10):
            assert mine.json()["id"] in [p["id"] for p in as_alice.get("/api/projects").json()]
            assert mine.json()["id"] not in [p["id"] for p in as_bob.get("/api/projects").json()]
        assert verifier_checks(stack) - before <= 2, stack.diagnostics()  # bob's first, at most
    before = verifier_checks(stack)
    with stack.client("not-a-valid-token") as anonymous:
        for _ in range(3):
            assert_error_shape(anonymous.get("/api/projects"), 401)
    assert verifier_checks(stack) - before == 3


def test_body_over_the_limit_is_413_json(stack: Stack) -> None:
    oversized = b'{"slug":"big","name":"' + b"x" * (1_048_576 + 10) + b'"}'
    with stack.client(stack.token()) as client:
        response = client.post(
            "/api/projects", content=oversized, headers={"Content-Type": "application/json"}
        )
    body = assert_error_shape(response, 413)
    assert "1048576" in body["error"]


def test_chunked_body_over_the_limit_is_413_json(stack: Stack) -> None:
    """No Content-Length to check up front: nginx counts while reading."""

    def chunks() -> Iterator[bytes]:
        yield b'{"slug":"big","name":"'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    with stack.client(stack.token()) as client:
        response = client.post(
            "/api/projects", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert_error_shape(response, 413)


def test_unknown_paths_are_404_json(stack: Stack) -> None:
    for path in ("/no/such/path", "/favicon.ico"):
        assert_error_shape(httpx.get(f"{stack.url}{path}"), 404)
    with stack.client(stack.token()) as client:
        assert_error_shape(client.get("/api/no/such/thing"), 404)


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/verify"),
        ("POST", "/introspect"),
        ("POST", "/internal/audit/events"),
        ("GET", "/internal/tasks/projects/1/access"),
        ("GET", "/internal/tasks/readable-projects"),
        ("GET", "/metrics"),
        ("GET", "/metrics/"),
        ("GET", "/api/../internal/tasks/readable-projects"),
        ("GET", "/%69nternal/audit/events"),
    ],
)
def test_internal_paths_are_never_exposed(stack: Stack, method: str, path: str) -> None:
    with stack.client(stack.token()) as client:
        response = client.request(method, httpx.URL(stack.url + path), json={})
    assert_error_shape(response, 404)


def test_metrics_are_served_inside_the_deployment(stack: Stack) -> None:
    """Each service answers /metrics to a scraper that reaches it directly, without a token."""
    with stack.client(stack.token()) as client:
        client.get("/api/projects")
    for name, svc in stack.services.items():
        response = httpx.get(f"{svc.url}/metrics")
        assert response.status_code == 200, (name, response.text)
        text = response.text
        assert "taskflow_http_requests_total" in text
        assert "taskflow_http_request_duration_seconds_bucket" in text
        assert "taskflow_db_pool_size" in text
        assert "taskflow_db_pool_waiting_clients" in text
    tasks_metrics = httpx.get(f"{stack.services['tasks'].url}/metrics").text
    assert 'route="/api/projects"' in tasks_metrics
    assert 'taskflow_outbox_backlog{service="tasks"}' in tasks_metrics
    verifier_metrics = httpx.get(f"{stack.services['auth-verifier'].url}/metrics").text
    assert 'taskflow_jwks_cache_age_seconds{service="auth-verifier"}' in verifier_metrics


def test_request_id_is_passed_through_or_created(stack: Stack) -> None:
    mine = f"client-{uuid.uuid4().hex}"
    with stack.client(stack.token()) as client:
        passed = client.get("/api/projects", headers={"X-Request-Id": mine})
        created = client.get("/api/projects")
        refused = client.get("/api/projects", headers={"X-Request-Id": "bad id with spaces"})
    assert passed.headers["X-Request-Id"] == mine
    assert created.headers["X-Request-Id"]
    assert refused.headers["X-Request-Id"] != "bad id with spaces"
    # The gateway's own answers carry it too, and the access log records it.
    unauthenticated = httpx.get(f"{stack.url}/api/projects", headers={"X-Request-Id": mine + "x"})
    assert unauthenticated.headers["X-Request-Id"] == mine + "x"
    # nginx writes the access line after the response has left: give it a moment.
    deadline = time.monotonic() + 5
    logged: set[str] = set()
    while time.monotonic() < deadline and not {mine, mine + "x"} <= logged:
        logged = {line["request_id"] for line in stack.nginx.access_lines()}
        time.sleep(0.05)
    assert {mine, mine + "x"} <= logged


def test_cors_preflight_and_gateway_errors_for_allowed_origins(stack: Stack) -> None:
    preflight = httpx.options(
        f"{stack.url}/api/projects",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code in (200, 204), preflight.text
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    # The browser can read the gateway's own 401 (and its challenge) from an allowed origin...
    denied = httpx.get(f"{stack.url}/api/projects", headers={"Origin": ORIGIN})
    assert denied.status_code == 401
    assert denied.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "WWW-Authenticate" in denied.headers["Access-Control-Expose-Headers"]
    # ...but not from anywhere else.
    elsewhere = httpx.get(f"{stack.url}/api/projects", headers={"Origin": "https://evil.test"})
    assert "Access-Control-Allow-Origin" not in elsewhere.headers
    with stack.client(stack.token()) as client:
        allowed = client.get("/api/projects", headers={"Origin": ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_responses_are_gzipped_for_clients_that_accept_it(stack: Stack) -> None:
    raw = httpx.get(f"{stack.url}/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert raw.headers.get("Content-Encoding") == "gzip"
    assert raw.json()["paths"]  # httpx decodes it
    with httpx.stream("GET", f"{stack.url}/openapi.json", headers={"Accept-Encoding": "gzip"}) as r:
        compressed = b"".join(r.iter_raw())
    assert len(compressed) < len(gzip.decompress(compressed))
    plain = httpx.get(f"{stack.url}/openapi.json", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers


def test_public_paths_need_no_token(stack: Stack) -> None:
    for path in ("/", "/health/ready", "/docs", "/openapi.json", "/jwks"):
        response = httpx.get(f"{stack.url}{path}")
        assert response.status_code == 200, (path, response.text)
