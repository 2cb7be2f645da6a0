"""The server stack ``taskflow serve`` and ``taskflow dev`` run uvicorn on.

uvloop + httptools by default (what ``uvicorn[standard]`` installs and most deployments run);
where either cannot be installed (no wheel for the platform: the dependency markers skip it),
``auto`` falls back to asyncio / h11 and says so. ``--loop asyncio --http h11`` (or
``UVICORN_LOOP`` / ``UVICORN_HTTP``, the variables plain ``uvicorn`` in the images reads too)
selects the pure-Python stack, e.g. to compare. Asking for a stack that is not installed is a
configuration error, not a silent fallback.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog
from taskflow_core.config import ConfigError

log = structlog.get_logger("taskflow.cli")

LOOPS = ("auto", "uvloop", "asyncio")
HTTPS = ("auto", "httptools", "h11")
LOOP_ENV = "UVICORN_LOOP"
HTTP_ENV = "UVICORN_HTTP"


# httptools with a bound on request heads (uvicorn's own has none): see taskflow_core.http_protocol.
BOUNDED_HTTPTOOLS = "taskflow_core.http_protocol:HttpToolsProtocol"


@dataclass(frozen=True)
class ServerStack:
    loop: str  # uvloop | asyncio
    http: str  # httptools | h11

    @property
    def uvicorn_http(self) -> str:
        """uvicorn's ``http`` option: the bounded httptools protocol, or ``h11``."""
        return BOUNDED_HTTPTOOLS if self.http == "httptools" else self.http


def _uvloop_installed() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def _httptools_installed() -> bool:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return False
    return True


_INSTALLED: dict[str, Callable[[], bool]] = {
    "uvloop": _uvloop_installed,
    "httptools": _httptools_installed,
}


def _resolve(kind: str, choice: str, fast: str, fallback: str, env: str) -> str:
    choices = ("auto", fast, fallback)
    if choice not in choices:
        raise ConfigError(f"--{kind} (or {env}) {choice!r} is not one of {', '.join(choices)}")
    if choice == fallback:
        return fallback
    if _INSTALLED[fast]():
        return fast
    if choice == fast:
        raise ConfigError(
            f"--{kind} {fast}: the {fast} package is not installed in this environment"
            f" (pip install {fast}), or use --{kind} auto to fall back to {fallback}"
        )
    log.warning("server_stack_fallback", kind=kind, missing=fast, using=fallback)
    return fallback


def resolve_stack(loop: str = "auto", http: str = "auto") -> ServerStack:
    """``auto`` is the fast implementation when it is installed, else the fallback."""
    return ServerStack(
        loop=_resolve("loop", loop, "uvloop", "asyncio", LOOP_ENV),
        http=_resolve("http", http, "httptools", "h11", HTTP_ENV),
    )


def add_stack_arguments(
    parser: argparse.ArgumentParser, environ: Mapping[str, str] | None = None
) -> None:
    env = os.environ if environ is None else environ
    parser.add_argument(
        "--loop",
        default=env.get(LOOP_ENV, "auto"),
        help=f"event loop: {', '.join(LOOPS)} (default auto: uvloop if installed; ${LOOP_ENV})",
    )
    parser.add_argument(
        "--http",
        default=env.get(HTTP_ENV, "auto"),
        help=f"HTTP parser: {', '.join(HTTPS)} (default auto: httptools if installed; ${HTTP_ENV})",
    )
