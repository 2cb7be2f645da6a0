"""What the tasks service's resources share, built once by ``create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import psycopg_pool
from falcon.asgi import Request, Response
from taskflow_core.config import Settings
from taskflow_core.db import create_pool, transaction
from taskflow_core.http import create_http_client

from .callers.caller import Caller, identity_of
from .callers.provisioning import Provisioner

Conn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True)
class TasksDeps:
    """Settings (and its clock), the pool, THE http client of the app, and the caller cache."""

    settings: Settings
    pool: psycopg_pool.AsyncConnectionPool
    http: httpx.AsyncClient
    provisioner: Provisioner

    @classmethod
    def open(cls, settings: Settings, service: str) -> TasksDeps:
        """The pool (not connected yet: the app's start-up opens it), the http client and the
        caller cache of one app."""
        pool = create_pool(settings, f"taskflow-{service}")
        http = create_http_client(timeout=settings.http_timeout)
        return cls(settings, pool, http, Provisioner(pool, settings))

    @asynccontextmanager
    async def reading(self, req: Request) -> AsyncIterator[tuple[Conn, Caller]]:
        """A pooled connection (committed when the block ends) and the request's caller."""
        identity = identity_of(req)
        async with self.pool.connection() as conn:
            yield conn, await self.provisioner.caller(identity, conn)

    @asynccontextmanager
    async def writing(self, req: Request) -> AsyncIterator[tuple[Conn, Caller]]:
        """One transaction and the request's caller, provisioned inside it."""
        identity = identity_of(req)
        async with transaction(self.pool) as conn:
            yield conn, await self.provisioner.caller(identity, conn)


class Resource:
    """A resource of this service, built once by ``create_app`` with the service's
    dependencies."""

    def __init__(self, deps: TasksDeps) -> None:
        self.deps = deps


def answer_created(resp: Response, media: Any, location: str, etag: str | None = None) -> None:
    """201 with the created resource, where it lives, and its ETag if it has one."""
    resp.status = 201
    resp.media = media
    if etag is not None:
        resp.set_header("ETag", etag)
    resp.set_header("Location", location)
