"""The OWASP checks once more through the real nginx gateway: object-level authorization across
tenants, body limits (declared and chunked), and slow clients that must not starve others."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.reliability.stack import bearer, new_user
from tests.support.issuer import TestIssuer

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
