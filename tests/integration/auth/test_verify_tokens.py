"""The auth-verifier as nginx's ``auth_request`` target, over the test SSO's real JWKS: which
tokens pass (with the identity headers) and which get a 401 in the error shape."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.auth.conftest import AUDIENCE
from tests.support.issuer import TestIssuer
from tests.support.processes import ServiceProcess


@pytest.fixture
def verifier(shared_verifier: ServiceProcess) -> Iterator[ServiceProcess]:
    yield shared_verifier


def nginx_subrequest(
    verifier: ServiceProcess, token: str | None, uri: str = "/api/projects", method: str = "GET"
) -> httpx.Response:
    """What nginx sends for ``auth_request /verify``: the client's headers, no body, plus the
    original URI and method set by the gateway config."""
    headers = {
        "X-Original-URI": uri,
        "X-Original-Method": method,
        "X-Forwarded-For": "203.0.113.9",
        "Host": "taskflow.example",
        # A client trying to choose its identity: must be ignored.
        "X-User-Id": "mallory",
        "X-Tenant-Id": "someone-elses-org",
    }
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(f"{verifier.url}/verify", headers=headers)


def assert_unauthorized(response: httpx.Response, message: str | None = None) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status_code"] == 401 and body["status"] == 401
    assert body["error"] == body["detail"]
    assert "X-User-Id" not in response.headers
    if message is not None:
        assert body["error"].startswith(message), body["error"]


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_valid_token_passes_with_identity_headers(
    verifier: ServiceProcess, issuer: TestIssuer, alg: str
) -> None:
    token = issuer.token(
        "user-42",
        alg=alg,
        aud=AUDIENCE,
        email="ada@example.test",
        name="Ada Lovelace",
        organization_ids=["org-a", "org-b"],
        client_id="web-app",
    )
    response = nginx_subrequest(verifier, token)
    assert response.status_code == 200, response.text
    assert response.headers["X-User-Id"] == "user-42"
    assert response.headers["X-User-Email"] == "ada@example.test"
    assert response.headers["X-User-Name"] == "Ada Lovelace"
    assert response.headers["X-Tenant-Id"] == "org-a"
    assert response.headers["X-Actor-Type"] == "human"
    assert response.headers["X-Client-Id"] == "web-app"


def test_agent_token_and_non_ascii_names(verifier: ServiceProcess, issuer: TestIssuer) -> None:
    token = issuer.token(
        "agent-7", aud=AUDIENCE, actor_type="agent", name="Zoë", tenant_id=" org-z "
    )
    response = nginx_subrequest(verifier, token)
    assert response.status_code == 200
    assert response.headers["X-Actor-Type"] == "agent"
    assert response.headers["X-Tenant-Id"] == "org-z"
    assert response.headers["X-User-Name"] == "Zo%C3%AB"


def test_missing_credential(verifier: ServiceProcess) -> None:
    assert_unauthorized(nginx_subrequest(verifier, None), "Not authenticated")


def test_expired_token(verifier: ServiceProcess, issuer: TestIssuer) -> None:
    token = issuer.token(aud=AUDIENCE, exp=int(time.time()) - 120)
    assert_unauthorized(nginx_subrequest(verifier, token), "Invalid JWT")


def test_expired_within_leeway_still_passes(verifier: ServiceProcess, issuer: TestIssuer) -> None:
    token = issuer.token(aud=AUDIENCE, exp=int(time.time()) - 10)
    assert nginx_subrequest(verifier, token).status_code == 200


def test_not_yet_valid_token(verifier: ServiceProcess, issuer: TestIssuer) -> None:
    token = issuer.token(aud=AUDIENCE, nbf=int(time.time()) + 600)
    assert_unauthorized(nginx_subrequest(verifier, token), "Invalid JWT")


def test_bad_signature(verifier: ServiceProcess, issuer: TestIssuer) -> None:
    # Signed by another key that claims the published kid.
    impostor = issuer.unpublished_key("RS256", kid=issuer.kid_for("RS256"))
    assert_unauthorized(
        nginx_subrequest(verifier, issuer.token(aud=AUDIENCE, key=impostor)), "Invalid JWT"
    )
    # A genuine token whose payload was changed after signing.
    header, _, signature = issuer.token(aud=AUDIENCE).split(".")
    _, payload, _ = issuer.token("admin", aud=AUDIENCE, role="admin").split(".")
    assert_unauthorized(nginx_subrequest(verifier, f"{header}.{payload}.{signature}"))


def test_alg_none_refused(verifier: ServiceProcess, issuer: TestIssuer) -> None:
    token = issuer.unsigned_token(aud=AUDIENCE)
    assert_unauthorized(nginx_subrequest(verifier, token), "Invalid JWT")


def test_hs256_signed_with_public_key_refused(verifier: ServiceProcess, issuer: TestIssuer) -> None:
    token = issuer.hs256_with_public_key(aud=AUDIENCE)
    assert_unauthorized(nginx_subrequest(verifier, token), "Invalid JWT")


def test_unknown_kid(verifier: ServiceProcess, issuer: TestIssuer) -> None:
    stranger = issuer.unpublished_key("ES256")
    token = issuer.token(aud=AUDIENCE, alg="ES256", key=stranger)
    assert_unauthorized(nginx_subrequest(verifier, token), "Token signing key not found in JWKS")


def test_wrong_issuer_or_audience(verifier: ServiceProcess, issuer: TestIssuer) -> None:
    assert_unauthorized(
        nginx_subrequest(verifier, issuer.token(aud=AUDIENCE, iss="https://evil.test"))
    )
    assert_unauthorized(nginx_subrequest(verifier, issuer.token(aud="another-api")))
    assert_unauthorized(nginx_subrequest(verifier, issuer.token()))  # no aud at all


def test_garbage_credentials(verifier: ServiceProcess) -> None:
    for token in ("a.b.c", "x" * 20_000 + ".y.z", "....", "eyJhbGciOiJSUzI1NiJ9.e30."):
        response = nginx_subrequest(verifier, token)
        assert response.status_code == 401, (token[:40], response.text)


def test_malformed_credentials_are_refused_without_asking_the_sso(
    verifier: ServiceProcess, issuer: TestIssuer
) -> None:
    before = issuer.userinfo_calls
    # The README's placeholder pasted as is, and a token cut off while copying it.
    assert_unauthorized(nginx_subrequest(verifier, "<token>"), "Invalid token: malformed")
    header = issuer.token(aud=AUDIENCE).split(".")[0]
    assert_unauthorized(nginx_subrequest(verifier, header), "Invalid JWT: malformed token")
    assert issuer.userinfo_calls == before
    # A well-formed opaque token is the SSO's to judge.
    assert_unauthorized(nginx_subrequest(verifier, uuid.uuid4().hex), "Token invalid or expired")
    assert issuer.userinfo_calls == before + 1


def test_only_a_preflight_passes_without_credential(verifier: ServiceProcess) -> None:
    """The gateway asks only about protected paths; whatever path it names (a public one, or
    one spelled to look public), a request without a good credential is a 401."""
    preflight = nginx_subrequest(verifier, None, method="OPTIONS")
    assert preflight.status_code == 200 and "X-User-Id" not in preflight.headers
    for uri in ("/health/ready", "/docs?x=1", "/health/../api/projects", "/healthz-not-public"):
        assert_unauthorized(nginx_subrequest(verifier, None, uri=uri))
        assert_unauthorized(nginx_subrequest(verifier, "not-a-token", uri=uri))


def test_subrequest_method_does_not_matter(verifier: ServiceProcess, issuer: TestIssuer) -> None:
    headers = {"Authorization": f"Bearer {issuer.token('u1', aud=AUDIENCE)}"}
    for method in ("POST", "PUT", "PATCH", "DELETE", "HEAD"):
        response = httpx.request(method, f"{verifier.url}/verify", headers=headers)
        assert response.status_code == 200, method
        assert response.headers["X-User-Id"] == "u1"
