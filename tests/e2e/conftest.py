"""End-to-end fixtures: the three services as separate uvicorn processes and the real nginx in
front of them, with the gateway configuration rendered from deploy/nginx.

Without nginx (or chromium, for the browser test) these tests skip with the reason, except when
``TASKFLOW_REQUIRE_E2E=1`` (CI), where a missing tool is a failure."""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.support.issuer import TestIssuer
from tests.support.postgres import create_database, drop_database
from tests.support.processes import ServiceProcess, free_port
from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
RENDER_SCRIPT = ROOT / "deploy" / "nginx" / "render.py"
SERVICE_NAMES = ("tasks", "audit", "auth-verifier")
ARTIFACTS = ROOT / "test-artifacts"


def load_render() -> ModuleType:
    """deploy/nginx/render.py, which is a script rather than an installed module."""
    spec = importlib.util.spec_from_file_location("taskflow_gateway_render", RENDER_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def render() -> ModuleType:
    return load_render()


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        require_tool("nginx is not installed (apt-get install nginx)")
    assert found is not None
    return found


@dataclass
class NginxProcess:
    """The real nginx in the foreground (``daemon off``) with a temporary prefix."""

    binary: str
    prefix: Path
    config: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.prefix / "nginx.log"

    @property
    def access_log(self) -> Path:
        return self.prefix / "access.log"

    def start(self, timeout: float = 15.0) -> NginxProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the child)
        self.proc = subprocess.Popen(
            [
                self.binary,
                "-p",
                f"{self.prefix}/",
                "-c",
                str(self.config),
                "-e",
                "stderr",
                "-g",
                "daemon off;",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"nginx did not answer in {timeout}s: {self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGQUIT)  # graceful: finish in-flight requests
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def access_lines(self) -> list[dict[str, Any]]:
        import json

        if not self.access_log.exists():
            return []
        return [json.loads(line) for line in self.access_log.read_text().splitlines() if line]


@dataclass
class Stack:
    """Three service processes behind one nginx; ``url`` is the public gateway."""

    services: dict[str, ServiceProcess]
    nginx: NginxProcess
    issuer: TestIssuer
    database_url: str
    logs: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.nginx.url

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=15.0, **kwargs)

    def token(self, sub: str | None = None, **claims: Any) -> str:
        return self.issuer.token(sub, **claims)

    def stop_service(self, name: str) -> None:
        self.services[name].stop()

    def kill_service(self, name: str) -> None:
        """SIGKILL, as a crash or an OOM kill would: no graceful shutdown."""
        proc = self.services[name].proc
        assert proc is not None
        proc.kill()
        proc.wait(timeout=10)

    def start_service(self, name: str) -> None:
        """Start ``name`` again on the same port (nginx is not touched)."""
        self.services[name].start()

    def diagnostics(self) -> str:
        """The tail of every log, for assertion messages."""
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


def _service_env(stack_urls: dict[str, str], issuer: TestIssuer, db_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": db_url,
        "SSO_URL": issuer.url,
        "TASKS_URL": stack_urls["tasks"],
        "AUDIT_URL": stack_urls["audit"],
        "AUTH_VERIFIER_URL": stack_urls["auth-verifier"],
        "SERVICE_SECRET": "e2e-" + secrets.token_hex(16),
        "LOG_FORMAT": "json",
        "OUTBOX_RELAY_INTERVAL": "0.2",
        "ALLOWED_ORIGINS": "http://localhost:3000",
        # No DNS for public names on the test machines: webhook URLs are not resolved here
        # (the SSRF refusals have tests of their own, tests/integration/tasks_api).
        "WEBHOOK_ALLOW_PRIVATE": "true",
    }


def start_stack(
    nginx_binary: str,
    render: ModuleType,
    issuer: TestIssuer,
    db_url: str,
    dev_issuer_dir: Path | None = None,
    **options: Any,
) -> Stack:
    """Services first (each on its own loopback port), then nginx rendered to point at them.

    With ``dev_issuer_dir`` the stack runs as docker-compose runs it: the auth-verifier's dev
    issuer (keys in that folder) signs the tokens and every service fetches its JWKS."""
    prefix = Path(tempfile.mkdtemp(prefix="taskflow-gateway-"))
    # nginx workers run as an unprivileged user when the tests run as root: they must be able
    # to read the merged OpenAPI file under the prefix.
    prefix.chmod(0o755)
    services = {
        name: ServiceProcess(name, {}, log_path=prefix / f"{name}.log") for name in SERVICE_NAMES
    }
    env = _service_env({n: s.url for n, s in services.items()}, issuer, db_url)
    if dev_issuer_dir is not None:
        verifier = services["auth-verifier"].url
        env.update(SSO_URL=verifier, JWKS_URL=f"{verifier}/dev/jwks")
        services["auth-verifier"].env.update(
            DEV_ISSUER="true", TASKFLOW_DATA_DIR=str(dev_issuer_dir)
        )
    started: list[ServiceProcess] = []
    nginx: NginxProcess | None = None
    try:
        for svc in services.values():
            svc.env = {**env, **svc.env}
        # Started side by side: each waits for its own /health.
        with ThreadPoolExecutor(len(services)) as pool:
            futures = {pool.submit(svc.start): svc for svc in services.values()}
            for future, svc in futures.items():
                if future.exception() is None:
                    started.append(svc)
            for future in futures:
                future.result()
        port = free_port()
        gateway_options = render.GatewayOptions(
            upstreams={n: f"127.0.0.1:{s.port}" for n, s in services.items()},
            listen=f"127.0.0.1:{port}",
            allowed_origins=["http://localhost:3000"],
            openapi_file=str(prefix / "openapi.json"),
            access_log=str(prefix / "access.log"),
            **options,
        )
        config = render.render(prefix, gateway_options)
        (prefix / "openapi.json").chmod(0o644)
        nginx = NginxProcess(nginx_binary, prefix, config, port).start()
    except BaseException:
        if nginx is not None:
            nginx.stop()
        for svc in reversed(started):
            svc.stop()
        shutil.rmtree(prefix, ignore_errors=True)
        raise
    return Stack(services, nginx, issuer, db_url, prefix)


def stop_stack(stack: Stack) -> None:
    stack.nginx.stop()
    for svc in reversed(list(stack.services.values())):
        svc.stop()
    keep = os.environ.get("TASKFLOW_KEEP_E2E_LOGS")
    if keep:
        shutil.copytree(stack.logs, Path(keep) / stack.logs.name, dirs_exist_ok=True)
    shutil.rmtree(stack.logs, ignore_errors=True)


@pytest.fixture(scope="session")
def e2e_database(pg_admin_url: str, template_db: str) -> Iterator[str]:
    """One migrated database shared by the session's gateway stack."""
    url = create_database(pg_admin_url, template=template_db)
    yield url
    drop_database(pg_admin_url, url)


@pytest.fixture(scope="session")
def stack(
    nginx_binary: str, render: ModuleType, issuer: TestIssuer, e2e_database: str
) -> Iterator[Stack]:
    """The shared stack for tests that leave every process running."""
    running = start_stack(nginx_binary, render, issuer, e2e_database)
    yield running
    stop_stack(running)


@pytest.fixture
def own_stack(
    nginx_binary: str, render: ModuleType, issuer: TestIssuer, db_url: str
) -> Iterator[Stack]:
    """A stack of this test's own, for tests that stop and start processes."""
    running = start_stack(nginx_binary, render, issuer, db_url)
    yield running
    stop_stack(running)


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """(browser, driver) paths of Debian's chromium and chromedriver."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    if browser is None or driver is None:
        require_tool("chromium and chromium-driver are not installed (apt-get install them)")
    assert browser is not None and driver is not None
    return browser, driver
