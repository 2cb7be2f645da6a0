"""The services run on uvloop + httptools (what `uvicorn[standard]` installs): `taskflow serve`
and the images' plain `uvicorn` command say so in their start-up log, and the pure-Python stack
(asyncio + h11) stays selectable with `--loop asyncio --http h11` or UVICORN_LOOP/UVICORN_HTTP.
httptools has no limit on request heads of its own: a head over 64 KiB gets a 431."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import StartService
from tests.support.issuer import TestIssuer
from tests.support.processes import free_port

_CONFIG_VARS = ("TASKS_URL", "AUDIT_URL", "AUTH_VERIFIER_URL", "JWKS_URL", "SERVICE_SECRET")


def server_stack_lines(log: Path) -> list[dict[str, str]]:
    """The ``server_stack`` start-up lines, without their time stamp and level."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if '"server_stack"' not in line:
            continue
        entry = json.loads(line)
        found.append({k: v for k, v in entry.items() if k not in {"event", "timestamp", "level"}})
    return found


def serve_all(db_url: str, issuer: TestIssuer, log: Path, *args: str) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in _CONFIG_VARS}
    env.update(DATABASE_URL=db_url, SSO_URL=issuer.url, LOG_FORMAT="json")
    for key in ("UVICORN_LOOP", "UVICORN_HTTP"):
        env.pop(key, None)
    argv = [sys.executable, "-m", "taskflow_cli.main", "serve", "all"]
    argv += ["--host", "127.0.0.1", "--port", str(port), *args]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
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


def use_the_api(url: str, issuer: TestIssuer) -> None:
    headers = {"Authorization": f"Bearer {issuer.token('stack-user', tenant_id='org-stack')}"}
    project = httpx.post(
        f"{url}/api/projects", json={"slug": "stack", "name": "Stack"}, headers=headers, timeout=10
    )
    assert project.status_code == 201, project.text
    listed = httpx.get(f"{url}/api/projects", headers=headers, timeout=10)
    assert listed.status_code == 200, listed.text
    assert "stack" in [p["slug"] for p in listed.json()]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param((), {"loop": "uvloop", "http": "httptools"}, id="default"),
        pytest.param(
            ("--loop", "asyncio", "--http", "h11"), {"loop": "asyncio", "http": "h11"}, id="h11"
        ),
    ],
)
def test_serve_runs_on_the_stack_it_logs(
    db_url: str, issuer: TestIssuer, tmp_path: Path, args: tuple[str, ...], expected: dict
) -> None:
    log = tmp_path / "serve.log"
    for url in serve_all(db_url, issuer, log, *args):
        use_the_api(url, issuer)
    assert server_stack_lines(log) == [expected], log.read_text(errors="replace")[-3000:]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, {"loop": "uvloop", "http": "httptools"}, id="default"),
        pytest.param(
            {"UVICORN_LOOP": "asyncio", "UVICORN_HTTP": "h11"},
            {"loop": "asyncio", "http": "h11"},
            id="h11",
        ),
    ],
)
def test_plain_uvicorn_as_in_the_images_logs_its_stack(
    db_url: str,
    issuer: TestIssuer,
    start_service: StartService,
    tmp_path: Path,
    env: dict[str, str],
    expected: dict,
) -> None:
    svc = start_service(
        "auth-verifier", DATABASE_URL=db_url, SSO_URL=issuer.url, SERVICE_SECRET="s" * 32, **env
    )
    assert httpx.get(f"{svc.url}/health", timeout=5).status_code == 200
    assert svc.log_path is not None
    assert server_stack_lines(svc.log_path) == [expected]


def raw_response(port: int, chunks: list[bytes]) -> bytes:
    """Send ``chunks`` one by one (a pause between them) and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except OSError:  # refused before the client finished sending
                break
            time.sleep(0.05)
        received = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while data := sock.recv(65536):
                received += data
                if b"connection: close" in received.lower() and received.endswith(b"}"):
                    break
        return received


@pytest.fixture
def auth_verifier(db_url: str, issuer: TestIssuer, start_service: StartService) -> int:
    svc = start_service("auth-verifier", DATABASE_URL=db_url, SSO_URL=issuer.url)
    return svc.port


def test_httptools_refuses_a_head_over_64_kib_with_431(auth_verifier: int) -> None:
    head = f"GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: {'a' * 70_000}\r\n\r\n".encode()
    raw = raw_response(auth_verifier, [head])
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 431 Request Header Fields Too Large", raw[:300]
    body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert body["status_code"] == 431
    assert body["detail"] == "request line and headers exceed 65536 bytes"
    # The service is unharmed, and a head under the limit is served.
    padding = "a" * 40_000
    ok = f"GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: {padding}\r\nConnection: close\r\n\r\n"
    assert raw_response(auth_verifier, [ok.encode()]).startswith(b"HTTP/1.1 200 ")


def test_httptools_refuses_a_head_that_trickles_in_without_end(auth_verifier: int) -> None:
    chunks = [b"GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: "] + [b"a" * 16_384] * 8
    raw = raw_response(auth_verifier, chunks)
    assert raw.startswith(b"HTTP/1.1 431 "), raw[:300]
