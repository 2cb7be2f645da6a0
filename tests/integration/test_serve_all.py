"""`taskflow serve all` with only DATABASE_URL and SSO_URL set starts and works end to end:
writes, the outbox relay into the audit service, and audit reads, all in one process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.issuer import TestIssuer
from tests.support.processes import free_port

_CONFIG_VARS = (
    "TASKS_URL",
    "AUDIT_URL",
    "AUTH_VERIFIER_URL",
    "JWKS_URL",
    "SERVICE_SECRET",
    "DEV_MODE",
    "DEV_ISSUER",
)


@pytest.fixture
def serve_all(db_url: str, issuer: TestIssuer, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in _CONFIG_VARS}
    env.update(DATABASE_URL=db_url, SSO_URL=issuer.url)
    log = open(tmp_path / "serve-all.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "taskflow_cli.main",
            "serve",
            "all",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "serve-all.log").read_text()[-2000:]
            try:
                if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def test_serve_all_needs_only_database_and_sso(serve_all: str, issuer: TestIssuer) -> None:
    headers = {"Authorization": f"Bearer {issuer.token('serve-all-user', tenant_id='org-s')}"}
    project = httpx.post(
        f"{serve_all}/api/projects",
        json={"slug": "serve-all", "name": "Serve all"},
        headers=headers,
        timeout=10,
    )
    assert project.status_code == 201, project.text
    pid = project.json()["id"]
    task = httpx.post(
        f"{serve_all}/api/projects/{pid}/tasks",
        json={"title": "First"},
        headers=headers,
        timeout=10,
    )
    assert task.status_code == 201, task.text
    tid = task.json()["id"]

    # The relay reaches the audit service in the same process without any *_URL settings.
    deadline = time.monotonic() + 30
    actions: list[str] = []
    while time.monotonic() < deadline:
        audit = httpx.get(f"{serve_all}/api/tasks/{tid}/audit", headers=headers, timeout=10)
        assert audit.status_code == 200, audit.text
        actions = [entry["action"] for entry in audit.json()]
        if actions:
            break
        time.sleep(0.3)
    assert actions == ["created"]
    project_audit = httpx.get(f"{serve_all}/api/projects/{pid}/audit", headers=headers, timeout=10)
    assert {e["action"] for e in project_audit.json()} >= {"created"}
