"""The tasks service as a real process, users with real tokens, and a view of its outbox."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from tests.conftest import StartService
from tests.support.issuer import TestIssuer
from tests.support.receiver import Receiver


@dataclass
class User:
    """A person calling the API with their own token (tenant fixed by the token)."""

    sub: str
    tenant: str
    http: httpx.Client
    _me: dict[str, Any] = field(default_factory=dict)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.http.post(path, json=json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.http.put(path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.http.patch(path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.delete(path, **kwargs)

    @property
    def default_project(self) -> int:
        """Their Default project (provisioned by their first call)."""
        if "project" not in self._me:
            resp = self.get("/api/projects")
            assert resp.status_code == 200, resp.text
            projects = resp.json()
            self._me["project"] = next(p["id"] for p in projects if p["is_default"])
        return int(self._me["project"])

    def new_project(self, name: str = "Team") -> int:
        slug = f"p-{uuid.uuid4().hex[:10]}"
        resp = self.post("/api/projects", {"name": name, "slug": slug})
        assert resp.status_code == 201, resp.text
        return int(resp.json()["id"])

    def add_member(self, project_id: int, other: User) -> int:
        """Add ``other`` to the project; return their worker id."""
        other.get("/api/projects")  # provision them first, as a real user would exist
        resp = self.post(f"/api/projects/{project_id}/members", {"user_id": other.sub})
        assert resp.status_code == 201, resp.text
        return int(resp.json()["worker_id"])

    def task(self, project_id: int, **fields: Any) -> dict[str, Any]:
        resp = self.post(f"/api/projects/{project_id}/tasks", {"title": "A task", **fields})
        assert resp.status_code == 201, resp.text
        return dict(resp.json())


MakeUser = Callable[..., User]


@pytest.fixture
def tasks_url(start_service: StartService, db_url: str, issuer: TestIssuer) -> str:
    svc = start_service("tasks", DATABASE_URL=db_url, SSO_URL=issuer.url, SCHEDULER_INTERVAL="0.2")
    return svc.url


@pytest.fixture
def make_user(tasks_url: str, issuer: TestIssuer) -> Iterator[MakeUser]:
    clients: list[httpx.Client] = []

    def make(tenant: str = "tenant-a", sub: str | None = None, **claims: Any) -> User:
        sub = sub or f"user-{uuid.uuid4().hex[:10]}"
        token = issuer.token(sub, tenant_id=tenant, **claims)
        client = httpx.Client(
            base_url=tasks_url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
        )
        clients.append(client)
        return User(sub=sub, tenant=tenant, http=client)

    yield make
    for client in clients:
        client.close()


class Outbox:
    """The tasks service's outbox, read directly: what audit events a request left."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.mark = 0

    def _rows(self, after: int) -> list[dict[str, Any]]:
        with psycopg.connect(self.url, row_factory=dict_row, prepare_threshold=None) as conn:
            rows = conn.execute(
                "SELECT id, payload FROM tasks.outbox WHERE id > %s ORDER BY id", (after,)
            ).fetchall()
        return [dict(r) for r in rows]

    def start(self) -> None:
        """Forget what is there now; :meth:`new` returns only later events."""
        rows = self._rows(self.mark)
        if rows:
            self.mark = rows[-1]["id"]

    def new(self) -> list[dict[str, Any]]:
        rows = self._rows(self.mark)
        if rows:
            self.mark = rows[-1]["id"]
        return [r["payload"] for r in rows]


@pytest.fixture
def outbox(db_url: str) -> Outbox:
    return Outbox(db_url)


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(
        db_url, row_factory=dict_row, autocommit=True, prepare_threshold=None
    ) as conn:
        yield conn


@pytest.fixture
def notifications() -> Iterator[Receiver]:
    """A stand-in notification service (a real HTTP server) recording what it receives."""
    with Receiver() as receiver:
        yield receiver
