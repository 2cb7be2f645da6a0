"""The background job that expires Idempotency-Key records."""

from __future__ import annotations

import asyncio

import structlog
from taskflow_core.db import transaction
from taskflow_core.service import BackgroundWork

from ..deps import TasksDeps
from . import store

log = structlog.get_logger("taskflow.tasks")

IDEMPOTENCY_PURGE_INTERVAL = 3600.0


def idempotency_purge(deps: TasksDeps) -> BackgroundWork:
    """Delete idempotency keys older than 24 h, hourly (idempotent: safe on every replica)."""

    async def run() -> None:
        while True:
            async with transaction(deps.pool) as conn:
                removed = await store.purge_expired(conn, deps.settings.clock())
            if removed:
                log.info("idempotency_keys_purged", removed=removed)
            await asyncio.sleep(IDEMPOTENCY_PURGE_INTERVAL)

    return BackgroundWork("idempotency-purge", run)
