"""DEV_MODE (reference §4.4/§4.8): the fixed dev user, with any Bearer value, may pick its
tenant with ``X-Tenant-ID`` on the projects and workers routes; without DEV_MODE the header is
ignored and a real token's tenant holds."""

from __future__ import annotations

import httpx
from taskflow_core.config import DEFAULT_TENANT

from tests.conftest import StartService
from tests.support.issuer import TestIssuer


def _client(url: str, token: str, tenant: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"}
    if tenant is not None:
        headers["X-Tenant-ID"] = tenant
    return httpx.Client(base_url=url, headers=headers, timeout=30.0)


def _slugs(api: httpx.Client) -> set[str]:
    resp = api.get("/api/projects", params={"limit": 100})
    assert resp.status_code == 200, resp.text
    return {p["slug"] for p in resp.json()}


def test_dev_mode_honours_the_tenant_header(
    start_service: StartService, db_url: str, issuer: TestIssuer
) -> None:
    svc = start_service(
        "tasks",
        DATABASE_URL=db_url,
        SSO_URL=issuer.url,
        DEV_MODE="true",
        OUTBOX_RELAY_INTERVAL="3600",
        OUTBOX_WAKEUP="off",  # the relay stays idle: outbox rows are what these tests read
        SCHEDULER_INTERVAL="3600",
    )
    with _client(svc.url, "anything", "org-x") as in_x, _client(svc.url, "anything") as plain:
        created = in_x.post("/api/projects", json={"slug": "in-x", "name": "X"})
        assert created.status_code == 201, created.text
        assert created.json()["tenant_id"] == "org-x"
        assert "in-x" in _slugs(in_x)
        assert "in-x" not in _slugs(plain)  # the default tenant does not see it
        assert plain.get(f"/api/projects/{created.json()['id']}").status_code == 404
        assert in_x.get("/api/workers").status_code in (200, 502)  # SSO member list may fail


def test_without_dev_mode_the_tenant_header_is_ignored(
    start_service: StartService, db_url: str, issuer: TestIssuer
) -> None:
    svc = start_service(
        "tasks",
        DATABASE_URL=db_url,
        SSO_URL=issuer.url,
        OUTBOX_RELAY_INTERVAL="3600",
        OUTBOX_WAKEUP="off",  # the relay stays idle: outbox rows are what these tests read
        SCHEDULER_INTERVAL="3600",
    )
    for tenant_claim, expected in (({"tenant_id": "tenant-m"}, "tenant-m"), ({}, DEFAULT_TENANT)):
        token = issuer.token("mallory", **tenant_claim)
        with _client(svc.url, token, "victim-org") as api:
            created = api.post("/api/projects", json={"slug": "mine", "name": "M"})
            assert created.status_code == 201, created.text
            assert created.json()["tenant_id"] == expected
