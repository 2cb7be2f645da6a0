"""Agent API keys (``tf_``) and opaque tokens through the stub SSO over real HTTP, the
verifier's introspection endpoint, and who may call internal routes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from taskflow_core.auth import ServiceCredentials, create_authenticator
from taskflow_core.config import Settings
from taskflow_core.errors import APIError

from tests.conftest import StartService
from tests.integration.auth.conftest import AUDIENCE, SERVICE_SECRET
from tests.integration.auth.sso_stand_in import register_api_key
from tests.support.issuer import TestIssuer
from tests.support.processes import ServiceProcess


@pytest.fixture
def verifier(shared_verifier: ServiceProcess) -> Iterator[ServiceProcess]:
    yield shared_verifier  # API_KEY_CACHE_TTL = INTROSPECTION_CACHE_TTL = 1 s


def new_api_key(issuer: TestIssuer, user: str = "owner-1", name: str = "claude-agent") -> str:
    """A key whose owner is a member of one organisation at the SSO (``org-of-<user>``)."""
    return register_api_key(issuer, user, name=name, organizations=[f"org-of-{user}"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def introspect(verifier: ServiceProcess, credential: str, as_token: str) -> httpx.Response:
    return httpx.post(
        f"{verifier.url}/introspect", json={"token": credential}, headers=bearer(as_token)
    )


def service_token(caller: str, audience: str, secret: str = SERVICE_SECRET) -> str:
    return ServiceCredentials(Settings(service_secret=secret), caller).token_for(audience)


def eventually(check: object, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_api_key_through_verify(verifier: ServiceProcess, issuer: TestIssuer) -> None:
    key = new_api_key(issuer, user="owner-9", name="Build bot")
    response = httpx.get(f"{verifier.url}/verify", headers=bearer(key))
    assert response.status_code == 200, response.text
    assert response.headers["X-User-Id"] == "owner-9"
    assert response.headers["X-Actor-Type"] == "agent"
    assert response.headers["X-Client-Id"] == issuer.api_keys[key]["id"]
    assert response.headers["X-Client-Name"] == "Build bot"
    assert response.headers["X-Tenant-Id"] == "org-of-owner-9"  # its owner's organisation
    unknown = httpx.get(f"{verifier.url}/verify", headers=bearer("tf_not-a-real-key"))
    assert unknown.status_code == 401
    assert unknown.json()["error"] == "Invalid API key"
    assert unknown.headers["WWW-Authenticate"].startswith("Bearer")


def test_api_key_answers_are_cached(verifier: ServiceProcess, issuer: TestIssuer) -> None:
    key = new_api_key(issuer)
    before = issuer.api_key_checks
    for _ in range(5):
        assert httpx.get(f"{verifier.url}/verify", headers=bearer(key)).status_code == 200
    assert issuer.api_key_checks - before <= 2  # one check per 1 s TTL at most


def test_revoked_key_refused_within_cache_ttl(verifier: ServiceProcess, issuer: TestIssuer) -> None:
    key = new_api_key(issuer)
    assert httpx.get(f"{verifier.url}/verify", headers=bearer(key)).status_code == 200
    del issuer.api_keys[key]
    revoked_at = time.monotonic()
    assert eventually(
        lambda: httpx.get(f"{verifier.url}/verify", headers=bearer(key)).status_code == 401
    )
    assert time.monotonic() - revoked_at < 1.0 + 2.0  # the 1 s TTL plus request slack


def test_api_key_end_to_end_through_a_service_authenticator(
    verifier: ServiceProcess, issuer: TestIssuer
) -> None:
    """What tasks and audit do with a ``tf_`` key: introspect at the verifier over HTTP (with a
    service credential), which asks the SSO's API-key endpoint over HTTP."""
    key = new_api_key(issuer, user="owner-3", name="qwen")
    settings = Settings(
        sso_url=issuer.url,
        auth_verifier_url=verifier.url,
        service_secret=SERVICE_SECRET,
        introspection_cache_ttl=1.0,
    )

    async def scenario() -> None:
        async with httpx.AsyncClient() as http:
            authenticator = create_authenticator(settings, http, service="tasks")
            identity = await authenticator.authenticate(key)
            assert (identity.sub, identity.actor_type, identity.client_name) == (
                "owner-3",
                "agent",
                "qwen",
            )
            with pytest.raises(APIError) as refused:
                await authenticator.authenticate("tf_unknown")
            assert refused.value.status == 401
            del issuer.api_keys[key]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    await authenticator.authenticate(key)
                except APIError as exc:
                    assert exc.status == 401
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("revoked key still accepted")

    asyncio.run(scenario())


def test_api_key_end_to_end_through_the_tasks_service(
    verifier: ServiceProcess, issuer: TestIssuer, start_service: StartService, db_url: str
) -> None:
    key = new_api_key(issuer, user="agent-owner", name="gemini")
    tasks = start_service(
        "tasks",
        DATABASE_URL=db_url,
        SSO_URL=issuer.url,
        AUTH_VERIFIER_URL=verifier.url,
        SERVICE_SECRET=SERVICE_SECRET,
        JWT_ISSUER=issuer.issuer,
        JWT_AUDIENCE=AUDIENCE,
    )
    response = httpx.get(f"{tasks.url}/api/projects", headers=bearer(key))
    assert response.status_code == 200, response.text
    refused = httpx.get(f"{tasks.url}/api/projects", headers=bearer("tf_revoked-or-unknown"))
    assert refused.status_code == 401
    assert refused.json()["error"] == "Invalid API key"


def test_opaque_token_checked_at_userinfo(verifier: ServiceProcess, issuer: TestIssuer) -> None:
    opaque = uuid.uuid4().hex
    issuer.userinfo[opaque] = {"sub": "cli-user", "email": "cli@example.test", "tenant_id": "o1"}
    response = httpx.get(f"{verifier.url}/verify", headers=bearer(opaque))
    assert response.status_code == 200, response.text
    assert response.headers["X-User-Id"] == "cli-user"
    assert response.headers["X-Tenant-Id"] == "o1"
    refused = httpx.get(f"{verifier.url}/verify", headers=bearer(uuid.uuid4().hex))
    assert refused.status_code == 401
    assert refused.json()["error"] == "Token invalid or expired"


def test_introspection_requires_a_service_credential(
    verifier: ServiceProcess, issuer: TestIssuer
) -> None:
    key = new_api_key(issuer, user="owner-5")
    ok = introspect(verifier, key, service_token("tasks", "auth-verifier"))
    assert ok.status_code == 200
    assert ok.json()["active"] is True
    assert ok.json()["identity"]["sub"] == "owner-5"
    assert ok.json()["identity"]["api_key_id"] == issuer.api_keys[key]["id"]
    assert ok.json()["identity"]["tenant_id"] == "org-of-owner-5"
    assert 0 < ok.json()["expires_in"] <= 1.0
    jwt_answer = introspect(
        verifier, issuer.token("u9", aud=AUDIENCE), service_token("audit", "auth-verifier")
    )
    assert jwt_answer.json()["identity"]["sub"] == "u9"
    refused = introspect(verifier, "tf_nope", service_token("tasks", "auth-verifier")).json()
    assert refused == {
        "active": False,
        "identity": None,
        "error": "Invalid API key",
        "expires_in": refused["expires_in"],
    }
    # A user token on an internal route: refused.
    user = introspect(verifier, key, issuer.token("u1", aud=AUDIENCE))
    assert user.status_code == 403
    assert user.json()["status_code"] == 403
    # A service credential for another audience, or signed with another secret: 401.
    assert introspect(verifier, key, service_token("tasks", "audit")).status_code == 401
    forged = service_token("tasks", "auth-verifier", secret="not-the-shared-secret-at-all")
    assert introspect(verifier, key, forged).status_code == 401
    assert httpx.post(f"{verifier.url}/introspect", json={"token": key}).status_code == 401


def test_introspection_body_is_validated(verifier: ServiceProcess) -> None:
    as_service = bearer(service_token("tasks", "auth-verifier"))
    bad = httpx.post(f"{verifier.url}/introspect", json={"tok": "x"}, headers=as_service)
    assert bad.status_code == 422


def test_service_credential_refused_on_public_routes(
    verifier: ServiceProcess, start_service: StartService, db_url: str, issuer: TestIssuer
) -> None:
    response = httpx.get(
        f"{verifier.url}/verify", headers=bearer(service_token("tasks", "auth-verifier"))
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    tasks = start_service(
        "tasks",
        DATABASE_URL=db_url,
        SSO_URL=issuer.url,
        SERVICE_SECRET=SERVICE_SECRET,
        JWT_ISSUER=issuer.issuer,
        JWT_AUDIENCE=AUDIENCE,
    )
    as_service = bearer(service_token("audit", "tasks"))
    user_route = httpx.get(f"{tasks.url}/api/projects", headers=as_service)
    assert user_route.status_code == 401
    assert user_route.json()["status_code"] == 401
