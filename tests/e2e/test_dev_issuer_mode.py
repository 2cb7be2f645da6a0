"""The stack as docker-compose runs it: no SSO; the auth-verifier's dev issuer signs the tokens
that ``taskflow token`` prints, and every service verifies them through ``/dev/jwks``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.e2e.conftest import start_stack, stop_stack
from tests.e2e.test_gateway import assert_error_shape
from tests.support.issuer import TestIssuer

pytestmark = pytest.mark.e2e


def test_dev_issuer_tokens_work_through_the_gateway(
    nginx_binary: str, render: ModuleType, issuer: TestIssuer, db_url: str, tmp_path: Path
) -> None:
    stack = start_stack(nginx_binary, render, issuer, db_url, dev_issuer_dir=tmp_path)
    try:
        minted = subprocess.run(
            [sys.executable, "-m", "taskflow_cli.main", "token", "--sub", "alice"],
            env={**os.environ, "TASKFLOW_DATA_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            check=True,
        )
        token = minted.stdout.strip().splitlines()[-1]
        with stack.client(token) as client:
            created = client.post("/api/projects", json={"slug": "dev-x", "name": "X"})
            assert created.status_code == 201, created.text
            assert created.json()["owner_id"] == "alice"
            history = client.get(f"/api/projects/{created.json()['id']}/audit")
            assert history.status_code == 200, history.text
        # A token from another issuer (the test SSO) is refused in this mode.
        with stack.client(issuer.token("mallory")) as client:
            assert_error_shape(client.get("/api/projects"), 401)
    finally:
        stop_stack(stack)
