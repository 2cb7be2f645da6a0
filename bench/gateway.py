"""The nginx gateway in front of the benchmark's services, rendered by deploy/nginx/render.py
(the deployment's own renderer, imported rather than copied) and run by the Debian nginx."""

from __future__ import annotations

import importlib.util
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from bench.procs import DRIVER_CPU, BenchError, Managed, ProcessRegistry, free_port
from bench.procs import wait_until_healthy as _wait
from bench.stack import REPO_ROOT, Service

RENDERER = REPO_ROOT / "deploy" / "nginx" / "render.py"


def require_nginx() -> str:
    for candidate in ("nginx", "/usr/sbin/nginx"):
        path = shutil.which(candidate)
        if path:
            return path
    raise BenchError(
        "nginx is not installed; the gateway scenarios need it. Install the Debian package: "
        "apt-get install -y nginx (or run without --through-gateway)."
    )


def load_renderer() -> ModuleType:
    if not RENDERER.exists():
        raise BenchError(f"{RENDERER.relative_to(REPO_ROOT)} does not exist yet: no gateway config")
    spec = importlib.util.spec_from_file_location("taskflow_nginx_render", RENDERER)
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot import {RENDERER}")
    module = importlib.util.module_from_spec(spec)
    # Registered first: its dataclasses look their module up while being defined.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[spec.name]
        raise BenchError(f"importing {RENDERER.name} failed: {type(exc).__name__}: {exc}") from exc
    for name in ("render", "GatewayOptions"):
        if not hasattr(module, name):
            raise BenchError(f"{RENDERER.relative_to(REPO_ROOT)} has no {name}()")
    return module


@dataclass
class Gateway:
    port: int
    managed: Managed

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.managed.pid


def start_gateway(
    registry: ProcessRegistry, services: dict[str, Service], work_dir: Path, pin: bool = True
) -> Gateway:
    """Render the config for the running services and start nginx (master in the foreground,
    pinned with its workers to the driver CPU)."""
    nginx = require_nginx()
    renderer = load_renderer()
    port = free_port()
    work_dir.mkdir(parents=True, exist_ok=True)
    options = renderer.GatewayOptions(
        upstreams={
            name: f"127.0.0.1:{services[name].port}" for name in ("tasks", "audit", "auth-verifier")
        },
        listen=f"127.0.0.1:{port}",
        openapi_file=str(work_dir / "openapi.json"),
        access_log=str(work_dir / "access.log"),
    )
    try:
        config = renderer.render(work_dir, options)
    except Exception as exc:
        raise BenchError(f"deploy/nginx/render.py failed: {type(exc).__name__}: {exc}") from exc
    check = registry.start(
        "nginx-check", [nginx, "-t", "-p", str(work_dir), "-c", str(config)], cpu=DRIVER_CPU
    )
    if check.proc.wait(timeout=30) != 0:
        raise BenchError(f"nginx -t refused the rendered config:\n{check.log_tail()}")
    registry.started.remove(check)
    managed = registry.start(
        "nginx",
        [nginx, "-p", str(work_dir), "-c", str(config), "-g", "daemon off;"],
        cpu=DRIVER_CPU if pin else None,
        stop_signal=signal.SIGTERM,  # fast shutdown: the master stops its workers
    )
    gateway = Gateway(port, managed)
    _wait(managed, f"{gateway.url}/health", timeout=20)
    return gateway
