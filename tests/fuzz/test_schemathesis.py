"""Property-based fuzzing of every service's OpenAPI document over real HTTP, with schemathesis'
default checks (no server errors, status codes / content types / headers / bodies as documented,
invalid input refused, valid input accepted), as a seeded user and without / with a bad token.

Bounded for CI: a fixed seed, ``FUZZ_MAX_EXAMPLES`` examples per operation (default 15), one
worker. A failure prints schemathesis' report with a reproducing curl command per finding."""

from __future__ import annotations

import json
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
    return subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, cwd=report_dir
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
    summary = _failures(tmp_path)
    assert result.returncode == 0, (
        f"schemathesis found problems in {service} ({credential}):\n{summary}\n"
        f"{result.stdout[-20000:]}\n{result.stderr[-3000:]}"
    )


def _foreign_key() -> object:
    from tests.support.issuer import generate_key

    return generate_key("RS256", kid="rs256-not-published")


def _failures(report_dir: Path) -> str:
    """One line per distinct failure from the NDJSON event stream (for the assertion text)."""
    lines: set[str] = set()
    for path in report_dir.rglob("*.ndjson"):
        for raw in path.read_text().splitlines():
            if "failure" not in raw.lower():
                continue
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            lines.add(json.dumps(event)[:400])
    return "\n".join(sorted(lines)[:50])
