"""OIDC discovery with real processes against a test SSO that publishes (or not) an OpenID
Provider configuration document: ``SSO_URL`` alone gives the issuer to enforce and the JWKS URL;
without a document the explicit settings still work; the document is persisted with the key
set, so an SSO that is down at start-up does not stop verification."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import StartService
from tests.integration.auth.test_jwks_resilience import eventually, log_events
from tests.support.issuer import BETTER_AUTH_DISCOVERY_PATH, ROOT_DISCOVERY_PATH, TestIssuer
from tests.support.processes import ServiceProcess

ROUTE = "/api/projects"
# The reference dashboard's OAuth client id: what its tokens carry as ``aud``.
DASHBOARD_CLIENT = "taskflow-dashboard"
# A key set the default path (${SSO_URL}/api/auth/jwks) does not serve: only discovery finds it.
MOVED_JWKS_PATH = "/oauth2/keys.json"


@pytest.fixture
def sso() -> Iterator[TestIssuer]:
    """A test SSO of this test only whose issuer is its own URL, like a real one's."""
    own = TestIssuer(issuer_is_url=True, jwks_path=MOVED_JWKS_PATH).start()
    yield own
    own.stop()


def production_env(**env: str) -> dict[str, str]:
    return {
        "ENV": "production",
        "JWT_AUDIENCE": DASHBOARD_CLIENT,
        "SERVICE_SECRET": secrets.token_urlsafe(48),
        **env,
    }


def call(service: ServiceProcess, token: str) -> httpx.Response:
    return httpx.get(
        service.url + ROUTE, headers={"Authorization": f"Bearer {token}"}, timeout=15.0
    )


def assert_refused_for(response: httpx.Response, claim: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == f"Invalid JWT: Invalid claim: '{claim}'"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def events(service: ServiceProcess, name: str) -> list[dict[str, object]]:
    return [e for e in log_events(service) if e.get("event") == name]


def readiness(service: ServiceProcess) -> dict[str, object]:
    body = httpx.get(f"{service.url}/health/ready", timeout=10.0).json()
    return dict(body["jwks"])


@pytest.mark.parametrize("path", [ROOT_DISCOVERY_PATH, BETTER_AUTH_DISCOVERY_PATH])
def test_sso_url_alone_enforces_the_discovered_issuer(
    path: str, sso: TestIssuer, start_service: StartService, db_url: str
) -> None:
    sso.discovery_path = path
    tasks = start_service("tasks", DATABASE_URL=db_url, SSO_URL=sso.url)

    right = sso.token("u-right", tenant_id="org-d")
    assert call(tasks, right).status_code == 200  # keys found through the document's jwks_uri
    other = sso.token("u-other", tenant_id="org-d", iss="https://sso.elsewhere.test")
    assert_refused_for(call(tasks, other), "iss")

    facts = readiness(tasks)
    assert (facts["issuer_source"], facts["jwks_url_source"]) == ("discovered", "discovered")
    (configuration,) = [
        e for e in events(tasks, "sso_configuration") if e["issuer_source"] == "discovered"
    ]
    assert configuration["issuer"] == sso.url
    assert configuration["jwks_url"] == sso.url + MOVED_JWKS_PATH


def test_without_a_discovery_document_explicit_settings_still_work(
    sso: TestIssuer, start_service: StartService, db_url: str
) -> None:
    sso.discovery_path = None
    sso.jwks_path = "/api/auth/jwks"  # Better Auth's default path: the fallback
    tasks = start_service("tasks", DATABASE_URL=db_url, SSO_URL=sso.url, JWT_ISSUER=sso.url)

    assert call(tasks, sso.token("u-right", tenant_id="org-e")).status_code == 200
    other = sso.token("u-other", tenant_id="org-e", iss="https://sso.elsewhere.test")
    assert_refused_for(call(tasks, other), "iss")

    (not_found,) = events(tasks, "oidc_discovery_not_found")
    assert sso.url + BETTER_AUTH_DISCOVERY_PATH in str(not_found["reason"])
    facts = readiness(tasks)
    assert (facts["issuer_source"], facts["jwks_url_source"]) == ("explicit", "default")
    assert facts["discovery"] == "not_found"


def test_sso_down_at_start_verifies_with_the_persisted_document_and_keys(
    sso: TestIssuer, start_service: StartService, db_url: str
) -> None:
    env = production_env(DATABASE_URL=db_url, SSO_URL=sso.url)
    right = sso.token("u-right", tenant_id="org-p", aud=DASHBOARD_CLIENT)
    other = sso.token(
        "u-other", tenant_id="org-p", aud=DASHBOARD_CLIENT, iss="https://sso.elsewhere.test"
    )
    first = start_service("tasks", **env)
    assert call(first, right).status_code == 200
    first.stop()
    sso.stop()

    second = start_service("tasks", **env)  # same database, the SSO unreachable
    assert call(second, right).status_code == 200
    assert_refused_for(call(second, other), "iss")  # the persisted issuer is enforced
    facts = readiness(second)
    assert (facts["issuer_source"], facts["jwks_url_source"]) == ("persisted", "persisted")


def test_production_accepts_no_token_while_no_issuer_is_known(
    sso: TestIssuer, issuer: TestIssuer, start_service: StartService, db_url: str
) -> None:
    """Keys reachable (JWKS_URL), the SSO's discovery not: development does not check ``iss``
    then; production refuses every token with 503 until the SSO answers."""
    sso.stop()
    # The session SSO's keys and issuer (its tokens carry https://sso.test).
    env = {"DATABASE_URL": db_url, "SSO_URL": sso.url, "JWKS_URL": issuer.jwks_url}
    token = issuer.token("u-any", tenant_id="org-q", aud=DASHBOARD_CLIENT)

    development = start_service("tasks", **env)
    assert call(development, token).status_code == 200
    development.stop()

    production = start_service("tasks", **production_env(JWKS_MIN_REFRESH_INTERVAL="1", **env))
    refused = call(production, token)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"] == "Authentication service unavailable"
    assert events(production, "issuer_unknown_tokens_refused")

    sso.restart()  # discovery answers again: the issuer it names is enforced
    ours = issuer.token("u-ours", tenant_id="org-q", aud=DASHBOARD_CLIENT, iss=sso.url)
    assert eventually(lambda: call(production, ours).status_code == 200)
    assert_refused_for(call(production, token), "iss")
