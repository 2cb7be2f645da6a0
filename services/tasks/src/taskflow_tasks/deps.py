"""What the tasks service's resources share, built once by ``create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import falcon.asgi
import httpx
import psycopg
import psycopg_pool
from taskflow_core.config import Settings
from taskflow_core.db import transaction

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

    @asynccontextmanager
    async def reading(self, req: falcon.asgi.Request) -> AsyncIterator[tuple[Conn, Caller]]:
        """A pooled connection (committed when the block ends) and the request's caller."""
        identity = identity_of(req)
        async with self.pool.connection() as conn:
            yield conn, await self.provisioner.caller(identity, conn)

    @asynccontextmanager
    async def writing(self, req: falcon.asgi.Request) -> AsyncIterator[tuple[Conn, Caller]]:
        """One transaction and the request's caller, provisioned inside it."""
        identity = identity_of(req)
        async with transaction(self.pool) as conn:
            yield conn, await self.provisioner.caller(identity, conn)
