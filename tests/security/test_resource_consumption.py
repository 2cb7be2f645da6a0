"""OWASP API4:2023 Unrestricted Resource Consumption: bodies over the limit (413, with or without
Content-Length), oversized headers, page sizes outside their documented bounds (422 on every list
operation), the per-credential rate limit (429 + Retry-After), and idle or slow connections that
must not starve other clients."""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.stack import admin_connection, bearer
from tests.security.conftest import World
from tests.support.processes import ServiceProcess

BODY_LIMIT = 4096


@contextmanager
def extra_tasks_service(world: World, tmp_path: Path, **env: str) -> Iterator[ServiceProcess]:
    """Another tasks process on the world's database, with different settings."""
    proc = ServiceProcess(
        "tasks", {**world.stack.base_env(), **env}, log_path=tmp_path / "tasks-extra.log"
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def raw_exchange(port: int, payload: bytes, read_timeout: float = 10.0) -> bytes:
    """Send raw bytes and return what the server answers before closing or going quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        with contextlib.suppress(OSError):  # the server may stop reading once it refused
            sock.sendall(payload)
        chunks = []
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
                if b"\r\n\r\n" in b"".join(chunks):
                    break
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


def status_of(raw: bytes) -> int:
    assert raw.startswith(b"HTTP/1.1 "), raw[:200]
    return int(raw.split(b" ", 2)[1])


def big_task_body() -> tuple[str, bytes]:
    title = f"big-{uuid.uuid4().hex[:6]}"
    return title, b'{"title": "' + title.encode() + b'", "description": "' + b"x" * 8000 + b'"}'


def stored(world: World, title: str) -> int:
    with admin_connection(world.stack.db_url) as conn:
        row = conn.execute("SELECT count(*) FROM tasks.tasks WHERE title = %s", (title,)).fetchone()
    return int(row[0]) if row else -1


def test_declared_body_over_the_limit_is_413(world: World, tmp_path: Path) -> None:
    title, big = big_task_body()
    with (
        extra_tasks_service(world, tmp_path, MAX_BODY_BYTES=str(BODY_LIMIT)) as svc,
        world.alice.client(svc.url) as api,
    ):
        path = f"/api/projects/{world.project['id']}/tasks"
        resp = api.post(path, content=big, headers={"Content-Type": "application/json"})
        assert resp.status_code == 413, resp.text
        assert resp.json()["status_code"] == 413
        small = api.post(path, json={"title": "small enough"})
        assert small.status_code == 201, small.text
    assert stored(world, title) == 0


def test_chunked_body_over_the_limit_is_413(world: World, tmp_path: Path) -> None:
    """No Content-Length (chunked transfer): the limit must hold while the body streams in."""
    title, big = big_task_body()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    with (
        extra_tasks_service(world, tmp_path, MAX_BODY_BYTES=str(BODY_LIMIT)) as svc,
        world.alice.client(svc.url) as api,
    ):
        path = f"/api/projects/{world.project['id']}/tasks"
        resp = api.post(path, content=chunks(), headers={"Content-Type": "application/json"})
        assert resp.status_code == 413, (resp.status_code, resp.text[:300])
    assert stored(world, title) == 0


def test_oversized_headers_are_refused_without_harm(world: World) -> None:
    port = world.stack.procs["tasks"].port
    head = (
        f"GET /api/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {world.alice.token}\r\n"
        f"X-Padding: {'a' * 200_000}\r\n\r\n"
    ).encode()
    status = status_of(raw_exchange(port, head))
    assert 400 <= status < 500 and status != 404, status
    with world.alice.client(world.tasks_url) as api:
        assert api.get("/api/projects").status_code == 200


def list_operations(base_url: str) -> list[tuple[str, dict[str, Any]]]:
    """(path with ids filled, the ``limit`` parameter's schema) of every GET taking ``limit``."""
    spec = httpx.get(f"{base_url}/openapi.json", timeout=10).json()
    found = []
    for path, item in spec["paths"].items():
        op = item.get("get")
        if not op or path.startswith("/internal"):
            continue
        params = {p["name"]: p for p in op.get("parameters", [])}
        if "limit" in params:
            found.append((path, params["limit"].get("schema", {})))
    return found


@pytest.mark.parametrize("service", ["tasks", "audit"])
def test_page_size_limits_on_every_list(world: World, service: str) -> None:
    base_url = world.stack.url(service)
    operations = list_operations(base_url)
    assert operations
    ids = world.ids()
    failures = []
    with world.alice.client(base_url) as api:
        for template, schema in operations:
            path = template.format(**ids)
            maximum = schema.get("maximum")
            if maximum is None:
                failures.append((template, "limit has no documented maximum"))
                continue
            ok = api.get(path, params={"limit": maximum})
            if ok.status_code != 200:
                failures.append((template, maximum, ok.status_code, ok.text[:200]))
            for bad in (maximum + 1, 0, -1, 10**12, "abc", "1.5"):
                resp = api.get(path, params={"limit": bad})
                if resp.status_code != 422 or "limit" not in resp.text:
                    failures.append((template, bad, resp.status_code, resp.text[:200]))
            if "offset" in {p for p in _params(base_url, template)}:
                resp = api.get(path, params={"offset": -1})
                if resp.status_code != 422:
                    failures.append((template, "offset=-1", resp.status_code, resp.text[:200]))
    assert not failures, failures


def _params(base_url: str, template: str) -> set[str]:
    spec = httpx.get(f"{base_url}/openapi.json", timeout=10).json()
    return {p["name"] for p in spec["paths"][template]["get"].get("parameters", [])}


def test_rate_limit_per_credential(world: World, tmp_path: Path) -> None:
    with extra_tasks_service(world, tmp_path, RATE_LIMIT_PER_MINUTE="5") as svc:
        with world.alice.client(svc.url) as api:
            statuses = [api.get("/api/projects").status_code for _ in range(5)]
            assert statuses == [200] * 5
            limited = api.get("/api/projects")
            assert limited.status_code == 429, limited.text
            retry_after = int(limited.headers["Retry-After"])
            assert 1 <= retry_after <= 60
            body = limited.json()
            assert body["status_code"] == 429 and body["error"]
            writes = api.post(f"/api/projects/{world.project['id']}/tasks", json={"title": "x"})
            assert writes.status_code == 429  # writes count too, and nothing is written
        with world.eve.client(svc.url) as other:
            assert other.get("/api/projects").status_code == 200  # a different credential
        assert httpx.get(f"{svc.url}/health", timeout=5).status_code == 200


def test_idle_and_slow_connections_do_not_starve_other_clients(world: World) -> None:
    """Slow-loris against a service process: sockets that never finish their headers."""
    port = world.stack.procs["tasks"].port
    idle = []
    try:
        for i in range(150):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if i % 2:
                sock.sendall(b"GET /api/projects HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            idle.append(sock)
        time.sleep(0.5)

        def request(_: int) -> int:
            with httpx.Client(timeout=10, headers=bearer(world.alice.token)) as client:
                return client.get(f"{world.tasks_url}/api/projects").status_code

        with ThreadPoolExecutor(10) as pool:
            assert set(pool.map(request, range(30))) == {200}
    finally:
        for sock in idle:
            sock.close()
