"""OWASP API2:2023 Broken Authentication, the binding side: a verified credential names exactly
one worker, in one tenant its holder belongs to. Production refuses tokens that name no
tenant."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from taskflow_core.auth.service_tokens import ServiceCredentials
from taskflow_core.config import Settings

from tests.reliability.stack import (
    SERVICE_SECRET,
    Stack,
    admin_connection,
    bearer,
    running_stack,
)
from tests.security.conftest import World
from tests.support.issuer import TestIssuer

AUDIENCE = "taskflow-api"
NO_TENANT = "tenant_id"  # what every refusal of a tenant-less token names


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# Finding 2: tokens without a tenant -------------------------------------------------------------
@pytest.fixture(scope="module")
def production(
    pg_admin_url: str,
    template_db: str,
    issuer: TestIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The three services with ENV=production (issuer and audience set, as production needs)."""
    with running_stack(
        pg_admin_url,
        template_db,
        issuer,
        tmp_path_factory.mktemp("production"),
        services=("tasks", "audit", "auth-verifier"),
        ENV="production",
        JWT_ISSUER=issuer.issuer,
        JWT_AUDIENCE=AUDIENCE,
    ) as stack:
        yield stack


def assert_no_tenant_refusal(response: httpx.Response, where: str) -> None:
    assert response.status_code == 401, (where, response.status_code, response.text)
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), where
    assert NO_TENANT in response.json()["error"], (where, response.text)


def test_production_refuses_tokens_without_a_tenant_claim(
    production: Stack, issuer: TestIssuer
) -> None:
    sub = unique("no-org")
    tenantless = {
        "no claim at all": issuer.token(sub, aud=AUDIENCE),
        "blank claims": issuer.token(sub, aud=AUDIENCE, tenant_id="  ", organization_ids=[]),
    }
    introspect_as = ServiceCredentials(Settings(service_secret=SERVICE_SECRET), "tasks")
    for what, token in tenantless.items():
        for service, path in (("tasks", "/api/projects"), ("audit", "/api/audit")):
            answer = httpx.get(production.url(service) + path, headers=bearer(token), timeout=15)
            assert_no_tenant_refusal(answer, f"{what}: {service}")
        verify = httpx.get(
            production.url("auth-verifier") + "/verify",
            headers={**bearer(token), "X-Original-URI": "/api/projects"},
            timeout=15,
        )
        assert_no_tenant_refusal(verify, f"{what}: /verify")
        introspected = httpx.post(
            production.url("auth-verifier") + "/introspect",
            json={"token": token},
            headers=bearer(introspect_as.token_for("auth-verifier")),
            timeout=15,
        )
        assert introspected.status_code == 200, introspected.text
        assert introspected.json()["active"] is False
        assert NO_TENANT in introspected.json()["error"], introspected.text
    with admin_connection(production.db_url) as conn:
        row = conn.execute("SELECT count(*) FROM tasks.workers WHERE user_id = %s", (sub,))
        assert row.fetchone() == (0,)  # refused before anything was provisioned
    # Control: the same person with an organisation is served everywhere.
    named = issuer.token(sub, aud=AUDIENCE, organization_ids=[unique("org")])
    for service, path in (("tasks", "/api/projects"), ("audit", "/api/audit")):
        answer = httpx.get(production.url(service) + path, headers=bearer(named), timeout=15)
        assert answer.status_code == 200, (service, answer.text)


def test_development_keeps_the_default_tenant_for_tokens_without_one(
    world: World, issuer: TestIssuer
) -> None:
    token = issuer.token(unique("dev-user"))
    with httpx.Client(base_url=world.tasks_url, headers=bearer(token), timeout=15) as api:
        projects = api.get("/api/projects")
    assert projects.status_code == 200, projects.text
    assert {p["tenant_id"] for p in projects.json()} == {"taskflow-default-org-id"}
