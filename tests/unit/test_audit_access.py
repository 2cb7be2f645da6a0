"""Who may read audit history (audit side rules, the tasks side decision) and the cache."""

from __future__ import annotations

import asyncio

import pytest
from taskflow_audit.access import TTLCache, require_owner, require_reader
from taskflow_core.errors import APIError
from taskflow_tasks.internal.resources import decide_access


def status_of(call, *args) -> int | None:
    try:
        call(*args)
    except APIError as exc:
        return exc.status
    return None


def test_reader_and_owner_rules() -> None:
    assert status_of(require_reader, "owner") is None
    assert status_of(require_reader, "member") is None
    assert status_of(require_reader, "forbidden") == 403
    assert status_of(require_reader, "not_found") == 404
    assert status_of(require_owner, "owner") is None
    assert status_of(require_owner, "member") == 403
    assert status_of(require_owner, "not_found") == 404


def test_decide_access() -> None:
    project = {"tenant_id": "t1", "owner_worker_id": 1, "caller_worker_id": 1, "caller_role": None}
    assert decide_access(project, "t1") == "owner"
    assert decide_access(project, "t2") == "not_found"
    assert decide_access(None, "t1") == "not_found"
    member = {**project, "caller_worker_id": 2, "caller_role": "member"}
    assert decide_access(member, "t1") == "member"
    assert decide_access({**member, "caller_role": "owner"}, "t1") == "owner"
    stranger = {**project, "caller_worker_id": 3, "caller_role": None}
    assert decide_access(stranger, "t1") == "forbidden"
    unknown_caller = {**project, "caller_worker_id": None}
    assert decide_access(unknown_caller, "t1") == "forbidden"


def test_ttl_cache_expires_and_shares_concurrent_loads() -> None:
    now = [0.0]
    cache: TTLCache[str, int] = TTLCache(5.0, max_entries=2, clock=lambda: now[0])
    loads = []

    async def load() -> int:
        loads.append(1)
        await asyncio.sleep(0.01)
        return len(loads)

    async def scenario() -> None:
        values = await asyncio.gather(*(cache.get("a", load) for _ in range(10)))
        assert values == [1] * 10 and len(loads) == 1
        now[0] = 4.9
        assert await cache.get("a", load) == 1
        now[0] = 5.1
        assert await cache.get("a", load) == 2
        await cache.get("b", load)
        await cache.get("c", load)
        assert len(cache._values) == 2

    asyncio.run(scenario())


def test_ttl_cache_does_not_keep_failures() -> None:
    cache: TTLCache[str, int] = TTLCache(5.0)

    async def fail() -> int:
        raise LookupError

    async def ok() -> int:
        return 7

    async def scenario() -> None:
        with pytest.raises(LookupError):
            await cache.get("k", fail)
        assert await cache.get("k", ok) == 7

    asyncio.run(scenario())
