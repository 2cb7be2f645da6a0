"""AuthMiddleware in-process (falcon.testing) over the test issuer's real JWKS."""

from __future__ import annotations

from collections.abc import Iterator

import falcon.asgi
import falcon.testing
import httpx
import pytest
from taskflow_core.auth import ServiceCredentials, create_authenticator
from taskflow_core.config import Settings
from taskflow_core.routing import Operation, Route
from taskflow_core.service import Lifecycle, build_app

from tests.support.issuer import TestIssuer

SECRET = "unit-test-service-secret-0123456789"


class WhoAmI:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        identity = req.context.identity
        resp.media = {"sub": identity.sub, "actor_type": identity.actor_type}
        if req.get_param("tenant"):
            resp.media["tenant"] = identity.tenant_id

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = {"sub": req.context.identity.sub}


class Open:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = {"identity": getattr(req.context, "identity", None) is not None}


ROUTES = [
    Route("/api/me", WhoAmI(), (Operation("GET", "me", "t"), Operation("POST", "me", "t"))),
    Route("/api/open", Open(), (Operation("GET", "open", "t", public=True),)),
    Route("/internal/tasks/me", WhoAmI(), (Operation("GET", "me", "t"),), internal=True),
]


def make_client(settings: Settings) -> falcon.testing.TestClient:
    http = httpx.AsyncClient()
    authenticator = create_authenticator(settings, http, service="tasks")
    app = build_app(
        service="tasks",
        title="t",
        settings=settings,
        routes=ROUTES,
        lifecycle=Lifecycle(None),
        authenticator=authenticator,
    )
    return falcon.testing.TestClient(app)


@pytest.fixture
def client(issuer: TestIssuer) -> Iterator[falcon.testing.TestClient]:
    yield make_client(Settings(sso_url=issuer.url, service_secret=SECRET))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_401(result: falcon.testing.Result) -> None:
    assert result.status_code == 401, result.text
    assert result.headers["WWW-Authenticate"].startswith("Bearer")
    body = result.json
    assert body["status_code"] == 401 and body["error"] == body["detail"]


def test_user_token_sets_identity(client: falcon.testing.TestClient, issuer: TestIssuer) -> None:
    result = client.simulate_get("/api/me", headers=bearer(issuer.token("alice")))
    assert result.status_code == 200
    assert result.json == {"sub": "alice", "actor_type": "human"}


def test_missing_or_non_bearer_credential_is_401(client: falcon.testing.TestClient) -> None:
    assert_401(client.simulate_get("/api/me"))
    assert_401(client.simulate_get("/api/me", headers={"Authorization": "Basic abc"}))
    assert client.simulate_get("/api/me").json["error"] == "Not authenticated"


def test_malformed_bearer_is_refused_without_asking_anyone(
    client: falcon.testing.TestClient, issuer: TestIssuer
) -> None:
    # Opaque tokens go to the auth-verifier, which does not run here: an answer other than a
    # 503 "Authentication service unavailable" shows nobody was asked.
    cut = issuer.token("alice").split(".")[0]
    for credential, message in (
        ("<token>", "Invalid token: malformed"),
        (cut, "Invalid JWT: malformed token"),
    ):
        result = client.simulate_get("/api/me", headers=bearer(credential))
        assert_401(result)
        assert result.json["error"].startswith(message), result.json
        assert 'error="invalid_token"' in result.headers["WWW-Authenticate"]


def test_identity_headers_from_clients_are_ignored(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/api/me", headers={"X-User-Id": "mallory", "X-Actor-Type": "x"})
    assert_401(result)


def test_public_routes_health_docs_and_preflight_need_no_token(
    client: falcon.testing.TestClient,
) -> None:
    assert client.simulate_get("/api/open").json == {"identity": False}
    for path in ("/", "/health", "/health/ready", "/openapi.json", "/docs", "/redoc"):
        assert client.simulate_get(path).status_code == 200, path
    preflight = client.simulate_options(
        "/api/me",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"


def test_unknown_route_stays_404(client: falcon.testing.TestClient) -> None:
    assert client.simulate_get("/api/nothing/here").status_code == 404


def test_service_credential_refused_on_user_routes(
    client: falcon.testing.TestClient,
) -> None:
    token = ServiceCredentials(Settings(service_secret=SECRET), "audit").token_for("tasks")
    assert_401(client.simulate_get("/api/me", headers=bearer(token)))


def test_internal_route_accepts_only_service_credentials_for_this_service(
    client: falcon.testing.TestClient, issuer: TestIssuer
) -> None:
    credentials = ServiceCredentials(Settings(service_secret=SECRET), "audit")
    ok = client.simulate_get("/internal/tasks/me", headers=bearer(credentials.token_for("tasks")))
    assert ok.status_code == 200
    assert ok.json == {"sub": "service:audit", "actor_type": "service"}
    user = client.simulate_get("/internal/tasks/me", headers=bearer(issuer.token("alice")))
    assert user.status_code == 403
    other_audience = credentials.token_for("audit")
    assert_401(client.simulate_get("/internal/tasks/me", headers=bearer(other_audience)))
    wrong_secret = ServiceCredentials(Settings(service_secret="another-secret-" * 3), "audit")
    assert_401(
        client.simulate_get("/internal/tasks/me", headers=bearer(wrong_secret.token_for("tasks")))
    )
    assert_401(client.simulate_get("/internal/tasks/me"))


def test_dev_mode_fixed_identity_still_needs_a_bearer(issuer: TestIssuer) -> None:
    client = make_client(Settings(sso_url=issuer.url, service_secret=SECRET, dev_mode=True))
    assert_401(client.simulate_get("/api/me"))
    result = client.simulate_get("/api/me", headers=bearer("anything"))
    assert result.json == {"sub": "dev-user-123", "actor_type": "human"}


def test_dev_mode_tenant_header_only_in_dev_mode(
    client: falcon.testing.TestClient, issuer: TestIssuer
) -> None:
    headers = {"X-Tenant-ID": "other-org"}
    normal = client.simulate_get(
        "/api/me", params={"tenant": "1"}, headers={**headers, **bearer(issuer.token("bob"))}
    )
    assert normal.json["tenant"] == "taskflow-default-org-id"
    dev = make_client(Settings(sso_url=issuer.url, service_secret=SECRET, dev_mode=True))
    result = dev.simulate_get("/api/me", params={"tenant": "1"}, headers={**headers, **bearer("x")})
    assert result.json["tenant"] == "other-org"
