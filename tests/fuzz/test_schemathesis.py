"""Property-based fuzzing of every service's OpenAPI document over real HTTP, with schemathesis'
default checks (no server errors, status codes / content types / headers / bodies as documented,
invalid input refused, valid input accepted), as a seeded user and without / with a bad token.

Bounded for CI: a fixed seed, ``FUZZ_MAX_EXAMPLES`` examples per operation (default 15), one
worker. A failure prints schemathesis' report with a reproducing curl command per finding."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.reliability.stack import Stack, User, create_project, create_task, new_user
from tests.support.issuer import TestIssuer

SERVICES = ["tasks", "audit", "auth-verifier"]
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "15"))
SEED = os.environ.get("FUZZ_SEED", "20261126")
CONFIG = Path(__file__).with_name("schemathesis.toml")
HOOKS = Path(__file__).with_name("hooks.py")


@pytest.fixture(scope="module")
def fuzz_stack(
    pg_admin_url: str,
    template_db: str,
    issuer: TestIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Stack, User]]:
    """One stack for the whole module (the services are stateless; the data only grows)."""
    from tests.support.postgres import create_database, drop_database

    url = create_database(pg_admin_url, template=template_db)
    stack = Stack(db_url=url, issuer=issuer, log_dir=tmp_path_factory.mktemp("fuzz"))
    try:
        for name in SERVICES:
            stack.start(name)
        user = new_user(issuer)
        seed_data(stack, user)
        yield stack, user
    finally:
        stack.stop_all()
        drop_database(pg_admin_url, url)


def seed_data(stack: Stack, user: User) -> None:
    """A project with a task and a subtask, so id-taking operations can hit real objects."""
    with user.client(stack.url("tasks")) as api:
        if api.get("/api/projects").status_code != 200:
            return  # the tasks API is not there yet; the fuzz run will say so
        project = create_project(api)
        task = create_task(api, project["id"])
        api.post(f"/api/tasks/{task['id']}/subtasks", json={"title": "sub"})


def run_schemathesis(
    base_url: str, headers: dict[str, str], report_dir: Path, max_examples: int = MAX_EXAMPLES
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url}/openapi.json",
        "--url",
        base_url,
        "--max-examples",
        str(max_examples),
        "--seed",
        SEED,
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        "--phases",
        "examples,coverage,fuzzing",
        "--no-color",
        "--output-truncate",
        "false",
        "--report",
        "ndjson",
        "--report-dir",
        str(report_dir),
    ]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, cwd=report_dir, env=env
    )


CREDENTIALS = ["valid-token", "no-token", "invalid-token"]


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("service", SERVICES)
def test_openapi_fuzz(
    service: str,
    credential: str,
    fuzz_stack: tuple[Stack, User],
    issuer: TestIssuer,
    tmp_path: Path,
) -> None:
    stack, user = fuzz_stack
    base_url = stack.url(service)
    spec = httpx.get(f"{base_url}/openapi.json", timeout=10)
    assert spec.status_code == 200
    headers: dict[str, str] = {}
    if credential == "valid-token":
        headers["Authorization"] = f"Bearer {user.token}"
    elif credential == "invalid-token":
        forged = issuer.token(user.sub, tenant_id=user.tenant, key=_foreign_key())
        headers["Authorization"] = f"Bearer {forged}"
    # Without a valid token every protected operation stops at the 401: fewer examples suffice.
    examples = MAX_EXAMPLES if credential == "valid-token" else max(3, MAX_EXAMPLES // 3)
    result = run_schemathesis(base_url, headers, tmp_path, examples)
    assert result.returncode == 0, (
        f"schemathesis found problems in {service} ({credential}):\n"
        f"{failures_section(result.stdout)[-30000:]}\n{result.stderr[-3000:]}"
    )


def _foreign_key() -> object:
    from tests.support.issuer import generate_key

    return generate_key("RS256", kid="rs256-not-published")


def failures_section(output: str) -> str:
    """schemathesis' FAILURES section (each with a reproducing curl) plus its summary."""
    start = output.find("= FAILURES =")
    return output[start - 40 :] if start >= 0 else output


GATEWAY_MAX_EXAMPLES = int(os.environ.get("FUZZ_GATEWAY_MAX_EXAMPLES", "5"))


def test_openapi_fuzz_through_the_gateway(
    pg_admin_url: str, template_db: str, issuer: TestIssuer, tmp_path: Path
) -> None:
    """Once through nginx (its merged /openapi.json), as a seeded user: the gateway adds the
    forward-auth hop, its own limits and its error pages, all of which must match the document."""
    from tests.reliability.stack import running_gateway

    with running_gateway(pg_admin_url, template_db, issuer) as gateway:
        base_url = str(getattr(gateway, "url"))  # noqa: B009 - the e2e Stack has no stub types
        user = new_user(issuer)
        with user.client(base_url) as api:
            project = create_project(api)
            create_task(api, project["id"])
        result = run_schemathesis(
            base_url, {"Authorization": f"Bearer {user.token}"}, tmp_path, GATEWAY_MAX_EXAMPLES
        )
    assert result.returncode == 0, (
        f"schemathesis found problems through the gateway:\n"
        f"{failures_section(result.stdout)[-30000:]}\n{result.stderr[-3000:]}"
    )
