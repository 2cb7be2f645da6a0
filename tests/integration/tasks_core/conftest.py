"""A real tasks service process per test, real JWTs from the test issuer, and direct database
reads to check what was (and was not) written."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from tests.conftest import StartService
from tests.support.issuer import TestIssuer


@dataclass
class User:
    """A person with a token for one tenant, and an HTTP client that sends it."""

    sub: str
    tenant: str
    token: str
    http: httpx.Client

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.post(path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.put(path, **kw)

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.patch(path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.delete(path, **kw)


class Database:
    def __init__(self, url: str) -> None:
        self.url = url

    def rows(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        with psycopg.connect(
            self.url, row_factory=dict_row, autocommit=True, prepare_threshold=None
        ) as conn:
            return conn.execute(sql, params).fetchall()

    def value(self, sql: str, params: Any = None) -> Any:
        rows = self.rows(sql, params)
        return next(iter(rows[0].values())) if rows else None

    def events(self, **match: Any) -> list[dict[str, Any]]:
        """Outbox payloads (oldest first) whose top-level fields equal ``match``."""
        payloads = [r["payload"] for r in self.rows("SELECT payload FROM tasks.outbox ORDER BY id")]
        return [p for p in payloads if all(p.get(k) == v for k, v in match.items())]

    def snapshot(self) -> dict[str, Any]:
        """Everything the API can write, to prove a failed request wrote nothing."""
        tables = ["workers", "projects", "project_members", "idempotency_keys", "outbox", "tasks"]
        return {t: self.rows(f"SELECT * FROM tasks.{t} ORDER BY 1") for t in tables}


@pytest.fixture
def db(db_url: str) -> Database:
    return Database(db_url)


@pytest.fixture
def tasks_url(start_service: StartService, db_url: str, issuer: TestIssuer) -> str:
    svc = start_service(
        "tasks",
        DATABASE_URL=db_url,
        SSO_URL=issuer.url,
        OUTBOX_RELAY_INTERVAL="3600",
        OUTBOX_WAKEUP="off",  # the relay stays idle: outbox rows are what these tests read
        SCHEDULER_INTERVAL="3600",
    )
    return svc.url


@pytest.fixture
def make_user(tasks_url: str, issuer: TestIssuer) -> Iterator[Any]:
    clients: list[httpx.Client] = []

    def make(sub: str, tenant: str = "tenant-a", **claims: Any) -> User:
        token = issuer.token(sub, tenant_id=tenant, **claims)
        http = httpx.Client(
            base_url=tasks_url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
        )
        clients.append(http)
        return User(sub, tenant, token, http)

    yield make
    for http in clients:
        http.close()
