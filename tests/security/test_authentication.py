"""OWASP API2:2023 Broken Authentication: the token matrix against every protected operation of
every service (straight to the service, so each edge verifies on its own), and through the
gateway when nginx is available. Every bad credential is a 401 with ``WWW-Authenticate: Bearer``
and the JSON error shape; no identity header sent by a client is trusted; user tokens do not open
internal routes and service credentials do not open public ones."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from taskflow_core.auth.service_tokens import ServiceCredentials
from taskflow_core.config import Settings

from tests.reliability.stack import SERVICE_SECRET
from tests.security.conftest import World
from tests.support.issuer import TestIssuer, generate_key

SERVICES = ["tasks", "audit", "auth-verifier"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(signature)]
    )


def claims_for(sub: str, tenant: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": sub,
        "email": f"{sub}@example.test",
        "iss": "https://sso.test",
        "iat": now,
        "exp": now + 3600,
        "tenant_id": tenant,
        **extra,
    }


def bad_credentials(issuer: TestIssuer, sub: str, tenant: str) -> dict[str, dict[str, str]]:
    """name -> extra request headers; each must be refused with 401."""
    rs_kid = issuer.kid_for("RS256")
    now = int(time.time())
    public_pem = issuer.keys[rs_kid].as_pem(private=False)
    hs_header = {"alg": "HS256", "typ": "JWT", "kid": rs_kid}
    signing_input = ".".join(
        [b64(json.dumps(hs_header).encode()), b64(json.dumps(claims_for(sub, tenant)).encode())]
    )
    hs256_with_public_key = (
        signing_input
        + "."
        + b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    )
    forged = issuer.token(
        sub, key=generate_key("RS256"), header={"kid": rs_kid}, tenant_id=tenant
    )  # a published kid, signed by someone else's key
    service_token = ServiceCredentials(Settings(service_secret=SERVICE_SECRET), "tasks")
    tokens = {
        "expired": issuer.token(sub, tenant_id=tenant, exp=now - 3600, iat=now - 7200),
        "not-yet-valid": issuer.token(sub, tenant_id=tenant, nbf=now + 3600),
        "bad-signature": forged,
        "alg-none": unsigned({"alg": "none", "typ": "JWT", "kid": rs_kid}, claims_for(sub, tenant)),
        "hs256-public-key": hs256_with_public_key,
        "unknown-kid": issuer.token(sub, key=generate_key("RS256", kid="not-published")),
        "garbage": "not-a-token",
        "three-garbage-parts": "a.b.c",
        "empty-claims": unsigned({"alg": "RS256", "kid": rs_kid}, {}),
        "service-credential-on-public-route": service_token.token_for("tasks"),
    }
    headers = {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}
    headers["missing"] = {}
    headers["empty-bearer"] = {"Authorization": "Bearer"}
    headers["basic-scheme"] = {"Authorization": "Basic " + b64(b"alice:secret")}
    headers["spoofed-identity-headers"] = {
        "X-User-Id": sub,
        "X-User-Email": f"{sub}@example.test",
        "X-Tenant-Id": tenant,
        "X-Actor-Type": "service",
    }
    return headers


def protected_operations(base_url: str) -> list[tuple[str, str]]:
    """(METHOD, concrete path) of every operation needing a user token, ids filled with 1."""
    spec = httpx.get(f"{base_url}/openapi.json", timeout=10).json()
    operations = []
    for path, item in spec["paths"].items():
        if path.startswith("/internal"):
            continue
        for method, op in item.items():
            if method.upper() not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                continue
            if not op.get("security"):  # documented as public
                continue
            concrete = path
            for name in [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]:
                concrete = concrete.replace("{" + name + "}", "1")
            operations.append((method.upper(), concrete))
    return operations


def assert_refused(resp: httpx.Response, what: str) -> None:
    assert resp.status_code == 401, (what, resp.status_code, resp.text[:300])
    assert resp.headers.get("WWW-Authenticate", "").lower().startswith("bearer"), what
    body = resp.json()
    assert body["status_code"] == 401 and body["error"], (what, body)


def run_matrix(
    base_url: str, operations: list[tuple[str, str]], credentials: dict[str, dict[str, str]]
) -> list[str]:
    failures = []
    with httpx.Client(base_url=base_url, timeout=15) as client:
        for method, path in operations:
            for name, headers in credentials.items():
                body = {} if method in {"POST", "PUT", "PATCH"} else None
                resp = client.request(method, path, headers=headers, json=body)
                try:
                    assert_refused(resp, f"{name} {method} {path}")
                except AssertionError as exc:
                    failures.append(str(exc)[:300])
    return failures


@pytest.mark.parametrize("service", SERVICES)
def test_token_matrix_on_every_protected_operation(
    world: World, issuer: TestIssuer, service: str
) -> None:
    base_url = world.stack.url(service)
    operations = protected_operations(base_url)
    if service == "auth-verifier":
        # Forward-auth checks the credential itself (documented as public: nginx calls it).
        operations.append(("GET", "/verify"))
    assert operations, "no protected operation documented"
    credentials = bad_credentials(issuer, world.alice.sub, world.alice.tenant)
    failures = run_matrix(base_url, operations, credentials)
    assert not failures, "\n".join(failures)


def test_good_tokens_of_every_algorithm_pass(world: World, issuer: TestIssuer) -> None:
    for alg in ("RS256", "ES256", "EdDSA"):
        token = issuer.token(world.alice.sub, alg=alg, tenant_id=world.alice.tenant)
        with httpx.Client(base_url=world.tasks_url, timeout=15) as client:
            resp = client.get("/api/projects", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200, (alg, resp.text)
        assert world.project["id"] in {p["id"] for p in resp.json()}


def test_identity_headers_from_clients_are_ignored(world: World) -> None:
    """A valid token for mallory plus headers claiming to be alice: mallory it is."""
    spoof = {
        "X-User-Id": world.alice.sub,
        "X-User-Email": world.alice.email,
        "X-Tenant-Id": world.alice.tenant,
        "X-Actor-Type": "service",
    }
    with world.mallory.client(world.tasks_url) as api:
        resp = api.get(f"/api/projects/{world.project['id']}", headers=spoof)
        assert resp.status_code == 404, resp.text
        mine = api.get("/api/projects", headers=spoof).json()
    assert world.project["id"] not in {p["id"] for p in mine}


@pytest.mark.parametrize("service", ["tasks", "audit", "auth-verifier"])
def test_user_tokens_do_not_open_internal_routes(world: World, service: str) -> None:
    base_url = world.stack.url(service)
    with world.alice.client(base_url) as api:
        internal = [
            (method, path)
            for method, path in _all_operations(base_url)
            if path.startswith("/internal")
        ]
        for method, path in internal:
            resp = api.request(method, path, json={} if method == "POST" else None)
            assert resp.status_code in {401, 403}, (method, path, resp.status_code, resp.text)


def _all_operations(base_url: str) -> Iterator[tuple[str, str]]:
    spec = httpx.get(f"{base_url}/openapi.json", timeout=10).json()
    for path, item in spec["paths"].items():
        for method in item:
            if method.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                yield method.upper(), re.sub(r"\{[^}]+\}", "1", path)


# Through the gateway ---------------------------------------------------------------------


def test_token_matrix_through_the_gateway(gateway: Any, issuer: TestIssuer) -> None:
    sub, tenant = "gw-user", "gw-org"
    credentials = bad_credentials(issuer, sub, tenant)
    operations: list[tuple[str, str]] = []
    for svc in gateway.services.values():
        operations += [
            (m, p)
            for m, p in protected_operations(svc.url)
            if p.startswith("/api/")  # what the gateway exposes
        ]
    assert operations
    failures = run_matrix(gateway.url, operations, credentials)
    assert not failures, "\n".join(failures)
    good: Callable[[], str] = lambda: issuer.token(sub, tenant_id=tenant)  # noqa: E731
    with httpx.Client(base_url=gateway.url, timeout=15) as client:
        resp = client.get("/api/projects", headers={"Authorization": f"Bearer {good()}"})
    assert resp.status_code == 200, resp.text
