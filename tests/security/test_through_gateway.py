"""The OWASP checks once more through the real nginx gateway: object-level authorization across
tenants, body limits (declared and chunked), slow clients that must not starve others, and
forward-auth that no spelling of a path skips and whose cache holds only answers naming a user
(API2/API8)."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.reliability.stack import bearer, new_user
from tests.support.issuer import TestIssuer
from tests.support.processes import free_port
from tests.support.tools import require_tool

# A request whose body never arrives (the other half of the slow sockets send nothing at all).
SLOW_HEAD = b"POST /api/projects HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"


def test_tenants_do_not_cross_through_the_gateway(gateway: Any, issuer: TestIssuer) -> None:
    alice, mallory = new_user(issuer), new_user(issuer)
    with alice.client(gateway.url) as api:
        slug = f"gw-{uuid.uuid4().hex[:8]}"
        project = api.post("/api/projects", json={"slug": slug, "name": "x"})
        assert project.status_code == 201, project.text
        pid = project.json()["id"]
        task = api.post(f"/api/projects/{pid}/tasks", json={"title": "secret"})
        assert task.status_code == 201, task.text
        tid = task.json()["id"]
    with mallory.client(gateway.url) as api:
        for method, path, body in [
            ("GET", f"/api/projects/{pid}", None),
            ("PUT", f"/api/projects/{pid}", {"name": "pwned"}),
            ("GET", f"/api/projects/{pid}/tasks", None),
            ("GET", f"/api/tasks/{tid}", None),
            ("PATCH", f"/api/tasks/{tid}/status", {"status": "in_progress"}),
            ("DELETE", f"/api/tasks/{tid}", None),
        ]:
            resp = api.request(method, path, json=body)
            assert resp.status_code == 404, (method, path, resp.status_code, resp.text)
        for path in (f"/api/tasks/{tid}/audit", f"/api/projects/{pid}/audit"):
            resp = api.get(path)
            assert resp.status_code in {403, 404}, (path, resp.status_code, resp.text)
    with alice.client(gateway.url) as api:
        still = api.get(f"/api/tasks/{tid}")
        assert still.status_code == 200 and still.json()["status"] == "pending"


def test_body_limit_through_the_gateway(gateway: Any, issuer: TestIssuer) -> None:
    alice = new_user(issuer)
    big = b'{"slug": "big", "name": "' + b"x" * 2_000_000 + b'"}'

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 64_000):
            yield big[i : i + 64_000]

    with alice.client(gateway.url) as api:
        for content in (big, chunks()):
            try:
                resp = api.post(
                    "/api/projects", content=content, headers={"Content-Type": "application/json"}
                )
            except httpx.WriteError:
                continue  # nginx answered 413 and closed before the body was sent: refused
            assert resp.status_code == 413, (resp.status_code, resp.text[:200])
        assert "big" not in {p["slug"] for p in api.get("/api/projects").json()}


def test_slow_clients_do_not_starve_others_at_the_gateway(gateway: Any, issuer: TestIssuer) -> None:
    parts = urlsplit(gateway.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    alice = new_user(issuer)
    slow = []
    try:
        for i in range(100):
            sock = socket.create_connection((host, port), timeout=5)
            if i % 2:
                sock.sendall(SLOW_HEAD)
            slow.append(sock)
        time.sleep(0.5)

        def request(_: int) -> int:
            with httpx.Client(timeout=15, headers=bearer(alice.token)) as client:
                return client.get(f"{gateway.url}/api/projects").status_code

        with ThreadPoolExecutor(10) as pool:
            assert set(pool.map(request, range(30))) == {200}
    finally:
        for sock in slow:
            sock.close()


def verifier_checks(gateway: Any) -> int:
    """How many /verify requests the gateway's auth-verifier has answered (its access lines)."""
    lines = (gateway.logs / "auth-verifier.log").read_text(errors="replace").splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    return sum(1 for e in entries if e.get("event") == "request" and e.get("path") == "/verify")


def raw_get(base_url: str, path: str, token: str) -> tuple[int, bytes]:
    """GET ``path`` exactly as written (httpx would remove the dot segments first)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=15)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_dot_segments_neither_skip_forward_auth_nor_poison_its_cache(
    gateway: Any, issuer: TestIssuer
) -> None:
    """nginx routes ``/health/../api/projects`` as ``/api/projects``; the verifier must judge
    that request like any other (it used to see a public ``/health/...`` and say 200, which
    nginx then reused for 10 s for that Authorization). Every later request with the same bad
    credential is checked again."""
    credential = f"not-a-token-{uuid.uuid4().hex}"
    before = verifier_checks(gateway)
    for path in ("/health/../api/projects", "/docs/%2e%2e/api/projects", "/./api/projects"):
        status, body = raw_get(gateway.url, path, credential)
        assert status == 401, (path, status, body[:200])
    with httpx.Client(base_url=gateway.url, headers=bearer(credential), timeout=15) as client:
        for _ in range(3):
            assert client.get("/api/projects").status_code == 401
    assert verifier_checks(gateway) - before == 6  # nothing answered from the cache
    # A real user's credential passes forward-auth on such a path (the service then answers
    # for the path as sent, which names no route of its own: 404).
    alice = new_user(issuer)
    before = verifier_checks(gateway)
    status, body = raw_get(gateway.url, "/health/../api/projects", alice.token)
    assert status == 404 and b"Not Found" in body, body[:300]
    assert verifier_checks(gateway) - before == 1


class AnonymousForwardAuth:
    """Plays both upstreams of a gateway: ``/verify`` answers 200 *without* identity headers
    (what the verifier used to answer for a "public" path), everything else 200; counts the
    ``/verify`` calls. It stands in for a faulty forward-auth answer the real verifier no
    longer gives, to check the gateway's own rule: such a 200 is never cached."""

    def __init__(self) -> None:
        self.verify_calls = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.startswith("/verify"):
                    outer.verify_calls += 1
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_gateway_never_caches_a_forward_auth_200_without_identity() -> None:
    from tests.e2e.conftest import NginxProcess, load_render

    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if binary is None:
        require_tool("nginx is not installed")
    assert binary is not None
    render = load_render()
    stand_in = AnonymousForwardAuth()
    port = free_port()
    # nginx workers run unprivileged when the tests run as root: a world-readable prefix.
    prefix = Path(tempfile.mkdtemp(prefix="taskflow-gateway-"))
    prefix.chmod(0o755)
    config = prefix / "nginx.conf"
    config.write_text(
        render.render_config(
            render.GatewayOptions(
                upstreams={s: stand_in.address for s in render.SERVICES},
                listen=f"127.0.0.1:{port}",
                openapi_file=str(prefix / "openapi.json"),
                access_log=str(prefix / "access.log"),
                workers=1,
            )
        )
    )
    nginx = NginxProcess(binary, prefix, config, port)
    try:
        nginx.start()
        with httpx.Client(base_url=nginx.url, headers=bearer("same-credential"), timeout=15) as c:
            statuses = [c.get("/api/projects").status_code for _ in range(3)]
    finally:
        nginx.stop()
        stand_in.stop()
        shutil.rmtree(prefix, ignore_errors=True)
    assert statuses == [200, 200, 200]
    assert stand_in.verify_calls == 3  # asked every time: the anonymous 200 was not cached
