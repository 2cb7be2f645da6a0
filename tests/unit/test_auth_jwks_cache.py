"""The JWKS cache against a real JWKS over loopback HTTP (in-process, no service)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from taskflow_core.auth.jwks import CachePolicy, JWKSCache
from taskflow_core.errors import APIError

from tests.support.issuer import TestIssuer
from tests.support.processes import free_port


@pytest.fixture
def sso() -> Iterator[TestIssuer]:
    issuer = TestIssuer().start()
    yield issuer
    issuer.stop()


def test_concurrent_lookups_share_one_fetch(sso: TestIssuer) -> None:
    async def scenario() -> list[Any]:
        async with httpx.AsyncClient() as http:
            cache = JWKSCache(sso.jwks_url, http)
            kids = [sso.kid_for("RS256")] * 20 + [f"unknown-{i}" for i in range(30)]
            return await asyncio.gather(*(cache.get(k) for k in kids), return_exceptions=True)

    results = asyncio.run(scenario())
    assert sso.jwks_fetches == 1
    assert all(not isinstance(r, Exception) for r in results[:20])
    assert all(isinstance(r, APIError) and r.status == 401 for r in results[20:])


def test_seeded_keys_verify_while_sso_is_unreachable(sso: TestIssuer) -> None:
    document = sso.jwks()
    dead = f"http://127.0.0.1:{free_port()}/api/auth/jwks"
    persisted: list[dict[str, Any]] = []

    async def remember(doc: dict[str, Any], fetched_at: float) -> None:
        persisted.append(doc)

    async def scenario() -> None:
        async with httpx.AsyncClient() as http:
            fresh = JWKSCache(sso.jwks_url, http, on_fetched=remember)
            await fresh.get(sso.kid_for("ES256"))
            restarted = JWKSCache(dead, http, CachePolicy(ttl=1, stale_ttl=86400))
            restarted.seed(persisted[0], fetched_at=time.time() - 3600)  # stale, within 24 h
            assert await restarted.get(sso.kid_for("EdDSA"))
            too_old = JWKSCache(dead, http, CachePolicy(ttl=1, stale_ttl=60))
            too_old.seed(document, fetched_at=time.time() - 3600)
            with pytest.raises(APIError) as unavailable:
                await too_old.get(sso.kid_for("EdDSA"))
            assert unavailable.value.status == 503

    asyncio.run(scenario())
    assert persisted and all("d" not in key for key in persisted[0]["keys"])


def test_a_token_seen_before_is_never_accepted_past_its_expiry(sso: TestIssuer) -> None:
    from taskflow_core.auth import create_authenticator
    from taskflow_core.config import Settings

    start = time.time()
    clock = [start]
    token = sso.token("u1", exp=int(start) + 10)

    async def scenario() -> None:
        async with httpx.AsyncClient() as http:
            authenticator = create_authenticator(
                Settings(sso_url=sso.url), http, now=lambda: clock[0]
            )
            assert (await authenticator.authenticate(token)).sub == "u1"
            clock[0] = start + 5
            assert (await authenticator.authenticate(token)).sub == "u1"  # repeat: cached
            clock[0] = start + 75  # past exp + the 60 s leeway
            with pytest.raises(APIError) as expired:
                await authenticator.authenticate(token)
            assert expired.value.status == 401

    asyncio.run(scenario())
