"""The SSO's JWKS endpoint down, slow (past the fetch timeout), answering garbage or resetting
connections: tokens signed with keys already held keep working, unknown keys get 401, nothing
hangs past the fetch timeout and nothing answers 500. A service that never got the keys answers
503 "Authentication service unavailable" (never 500) until the SSO is back."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.reliability.stack import Stack, bearer, new_user
from tests.reliability.stubs import JwksMode, JwksStub
from tests.support.issuer import TestIssuer, generate_key

# The verifier's JWKS fetch timeout is at most 5 s; a request may wait for one fetch.
NO_HANG = httpx.Timeout(12.0)
FAULTS: list[JwksMode] = ["down", "slow", "garbage", "not-a-keyset", "reset"]
# Where each service checks a bearer token (the verifier's forward-auth; a tasks API route).
PROTECTED = {"auth-verifier": "/verify", "tasks": "/api/projects"}


@pytest.fixture
def jwks(issuer: TestIssuer) -> Iterator[JwksStub]:
    stub = JwksStub(jwks=issuer.jwks, slow_seconds=8.0).start()
    yield stub
    stub.stop()


def fast_cache_env(stub: JwksStub) -> dict[str, str]:
    """Keys go stale after 1 s and unknown kids may refetch every second: every request below
    exercises the refresh path against the misbehaving endpoint."""
    return {
        "JWKS_URL": stub.jwks_url,
        "JWKS_CACHE_TTL": "1",
        "JWKS_MIN_REFRESH_INTERVAL": "1",
        "HTTP_TIMEOUT": "2",
    }


def get(url: str, token: str | None) -> httpx.Response:
    return httpx.get(url, headers=bearer(token) if token else {}, timeout=NO_HANG)


@pytest.mark.parametrize("service", ["auth-verifier", "tasks"])
@pytest.mark.parametrize("fault", FAULTS)
def test_known_keys_keep_working_when_jwks_misbehaves(
    service: str, fault: JwksMode, stack: Stack, jwks: JwksStub, issuer: TestIssuer
) -> None:
    svc = stack.start(service, **fast_cache_env(jwks))
    url = svc.url + PROTECTED[service]
    tokens = {alg: new_user(issuer).token for alg in ("RS256",)}
    tokens["ES256"] = issuer.token("u-es", alg="ES256", tenant_id="org-es")
    tokens["EdDSA"] = issuer.token("u-ed", alg="EdDSA", tenant_id="org-ed")
    for token in tokens.values():
        first = get(url, token)
        assert first.status_code == 200, first.text  # keys fetched while the SSO is fine

    jwks.mode = fault
    unknown = issuer.token("u-x", key=generate_key("RS256", kid="never-published"))
    for _ in range(3):
        for alg, token in tokens.items():
            resp = get(url, token)
            assert resp.status_code == 200, (fault, alg, resp.status_code, resp.text)
        refused = get(url, unknown)
        assert refused.status_code == 401, (fault, refused.status_code, refused.text)
        assert refused.headers.get("WWW-Authenticate", "").startswith("Bearer")
        assert refused.json()["status_code"] == 401
        anonymous = get(url, None)
        assert anonymous.status_code == 401

    assert svc.proc is not None and svc.proc.poll() is None
    log = svc.log_path.read_text() if svc.log_path else ""
    assert "unhandled_error" not in log


@pytest.mark.parametrize("fault", FAULTS)
def test_no_keys_held_and_jwks_broken_is_503_then_recovers(
    fault: JwksMode, stack: Stack, jwks: JwksStub, issuer: TestIssuer
) -> None:
    """Nothing persisted yet (a fresh database): started during the outage, tasks cannot
    verify anything."""
    jwks.mode = fault
    svc = stack.start("tasks", **fast_cache_env(jwks))
    token = new_user(issuer).token
    url = svc.url + PROTECTED["tasks"]
    for _ in range(3):
        resp = get(url, token)
        assert resp.status_code == 503, (fault, resp.status_code, resp.text)
        assert resp.json()["error"] == "Authentication service unavailable"
        assert resp.headers.get("Retry-After")
    jwks.mode = "ok"
    # The next fetch is allowed after JWKS_MIN_REFRESH_INTERVAL (1 s).
    deadline = time.monotonic() + 10
    status = 0
    while time.monotonic() < deadline:
        status = get(url, token).status_code
        if status == 200:
            break
        time.sleep(0.3)
    assert status == 200
