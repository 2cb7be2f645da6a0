"""The dev issuer: `taskflow token` mints real tokens that a stack with ``DEV_ISSUER=true``
verifies through ``/dev/jwks``; `taskflow dev` prints one that works; production refuses it."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from taskflow_cli.main import main as taskflow

from tests.integration.auth.conftest import StartVerifier
from tests.support.processes import free_port


def mint(data_dir: Path, *args: str) -> str:
    out = io.StringIO()
    env = {**os.environ, "TASKFLOW_DATA_DIR": str(data_dir)}
    with contextlib.redirect_stdout(out), _environ(env):
        assert taskflow(["token", *args]) == 0
    return out.getvalue().strip()


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_taskflow_token_is_verified_through_dev_jwks(
    start_verifier: StartVerifier, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"  # the folder start_verifier gives the service
    port = free_port()
    verifier = start_verifier(
        f"http://127.0.0.1:{port}",
        port=port,
        DEV_ISSUER="true",
        JWKS_URL=f"http://127.0.0.1:{port}/dev/jwks",
    )
    token = mint(
        data_dir, "--sub", "alice", "--email", "alice@dev.test", "--name", "Alice",
        "--tenant", "org-dev", "--agent", "--expires", "15m",
    )  # fmt: skip
    response = httpx.get(f"{verifier.url}/verify", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.headers["X-User-Id"] == "alice"
    assert response.headers["X-Tenant-Id"] == "org-dev"
    assert response.headers["X-Actor-Type"] == "agent"
    published = httpx.get(f"{verifier.url}/dev/jwks").json()["keys"]
    assert len(published) == 1 and "d" not in published[0]
    # The key is created once: a second mint uses the same one.
    again = mint(data_dir, "--sub", "bob")
    assert (
        httpx.get(
            f"{verifier.url}/verify", headers={"Authorization": f"Bearer {again}"}
        ).status_code
        == 200
    )


def test_dev_jwks_absent_unless_dev_issuer(start_verifier: StartVerifier) -> None:
    verifier = start_verifier(f"http://127.0.0.1:{free_port()}")
    assert httpx.get(f"{verifier.url}/dev/jwks").status_code == 404


def test_taskflow_token_refuses_bad_expiry(tmp_path: Path) -> None:
    with _environ({**os.environ, "TASKFLOW_DATA_DIR": str(tmp_path)}):
        assert taskflow(["token", "--sub", "x", "--expires", "soon"]) == 2


def test_taskflow_dev_prints_a_token_that_works(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "TASKFLOW_DATA_DIR": str(tmp_path / "dev")}
    env.pop("SERVICE_SECRET", None)  # one process: the per-process secret must do
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "taskflow_cli.main", "dev", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        token = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            found = re.search(r"export TOKEN=(\S+)", log.read_text(errors="replace"))
            if found:
                token = found.group(1)
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
            time.sleep(0.2)
        assert token, log.read_text(errors="replace")[-2000:]
        headers = {"Authorization": f"Bearer {token}"}
        projects = httpx.get(f"{base}/api/projects", headers=headers)
        assert projects.status_code == 200, projects.text
        verified = httpx.get(f"{base}/verify", headers=headers)
        assert verified.headers["X-User-Id"] == "dev-user-123"
        assert httpx.get(f"{base}/api/projects").status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.mark.parametrize(
    "env",
    [{"DEV_MODE": "true", "ENV": "production"}, {"DEV_ISSUER": "true", "ENV": "production"}],
)
def test_dev_shortcuts_refused_in_production(env: dict[str, str]) -> None:
    from taskflow_core.config import ConfigError, Settings

    with pytest.raises(ConfigError):
        Settings.from_env(env)
    from taskflow_auth_verifier.app import create_app

    with pytest.raises(ConfigError):
        create_app(
            Settings(
                dev_mode=env.get("DEV_MODE") == "true",
                dev_issuer=env.get("DEV_ISSUER") == "true",
                env="production",
            )
        )
