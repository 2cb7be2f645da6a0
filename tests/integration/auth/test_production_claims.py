"""Issuer and audience in production (issue 21, finding 4), with real processes: `taskflow
serve` refuses to start without them (one clear line, exit 2); with them set, a real token from
another issuer or for another audience is refused."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import httpx
import pytest

from tests.conftest import StartService
from tests.support.issuer import TestIssuer
from tests.support.processes import free_port

AUDIENCE = "taskflow-dashboard"  # the reference dashboard's OAuth client id


def secret() -> str:
    return secrets.token_urlsafe(48)


def serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "OIDC_"))}
    return subprocess.run(
        [sys.executable, "-m", "taskflow_cli.main", "serve", "tasks", "--port", str(free_port())],
        env={**keep, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"JWT_ISSUER": "https://sso.example"}, "JWT_AUDIENCE"),
        ({"JWT_AUDIENCE": AUDIENCE, "OIDC_DISCOVERY": "off"}, "JWT_ISSUER"),
    ],
)
def test_serve_refuses_to_start_in_production_without_them(
    env: dict[str, str], named: str, db_url: str
) -> None:
    result = serve({"ENV": "production", "DATABASE_URL": db_url, "SERVICE_SECRET": secret(), **env})
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"taskflow: {named} is required when ENV=production"), lines


def test_production_refuses_another_issuer_and_another_audience(
    issuer: TestIssuer, start_service: StartService, db_url: str
) -> None:
    tasks = start_service(
        "tasks",
        ENV="production",
        DATABASE_URL=db_url,
        SSO_URL=issuer.url,
        SERVICE_SECRET=secret(),
        JWT_ISSUER=issuer.issuer,
        JWT_AUDIENCE=AUDIENCE,
    )

    def call(**claims: object) -> httpx.Response:
        token = issuer.token("u-prod", tenant_id="org-prod", **claims)
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.get(f"{tasks.url}/api/projects", headers=headers, timeout=15.0)

    assert call(aud=AUDIENCE).status_code == 200
    for claims, error in (
        ({"aud": AUDIENCE, "iss": "https://sso.elsewhere.test"}, "Invalid claim: 'iss'"),
        ({"aud": "someone-elses-client"}, "Invalid claim: 'aud'"),
        ({"aud": None}, "Missing claim: 'aud'"),
    ):
        refused = call(**claims)
        assert refused.status_code == 401, (claims, refused.text)
        assert refused.json()["error"] == f"Invalid JWT: {error}", claims
