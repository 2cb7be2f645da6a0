"""OIDC discovery: which source wins (pure rules), authlib's validation of the document, the
fetch against a real test SSO over loopback HTTP, and the key cache's start-up fetch."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from taskflow_core.auth.discovery import (
    DiscoveryStatus,
    ProviderConfiguration,
    ProviderMetadata,
    Resolved,
    Source,
    fetch_provider_metadata,
    provider_metadata,
    resolve_issuer,
    resolve_jwks_url,
)
from taskflow_core.auth.jwks import CachePolicy, JWKSCache
from taskflow_core.errors import APIError

from tests.support.issuer import BETTER_AUTH_DISCOVERY_PATH, ROOT_DISCOVERY_PATH, TestIssuer
from tests.support.processes import free_port

META = ProviderMetadata("https://sso.x", "https://sso.x/keys", {})
DEFAULT = "https://sso.x/api/auth/jwks"


@pytest.fixture
def sso() -> Iterator[TestIssuer]:
    own = TestIssuer(issuer_is_url=True).start()
    yield own
    own.stop()


@pytest.mark.parametrize(
    ("explicit", "metadata", "source", "expected"),
    [
        ("https://v/jwks", META, Source.DISCOVERED, Resolved("https://v/jwks", Source.EXPLICIT)),
        (None, META, Source.DISCOVERED, Resolved("https://sso.x/keys", Source.DISCOVERED)),
        (None, META, Source.PERSISTED, Resolved("https://sso.x/keys", Source.PERSISTED)),
        (None, None, Source.NONE, Resolved(DEFAULT, Source.DEFAULT)),
    ],
)
def test_jwks_url_explicit_then_discovered_then_default(
    explicit: str | None, metadata: ProviderMetadata | None, source: Source, expected: Resolved
) -> None:
    assert resolve_jwks_url(explicit, metadata, source, DEFAULT) == expected


@pytest.mark.parametrize(
    ("explicit", "metadata", "check", "expected"),
    [
        ("https://mine", META, True, Resolved("https://mine", Source.EXPLICIT)),
        (None, META, True, Resolved("https://sso.x", Source.DISCOVERED)),
        (None, None, True, Resolved(None, Source.NONE)),
        (None, META, False, Resolved(None, Source.OFF)),
    ],
)
def test_issuer_explicit_then_discovered_unless_unchecked(
    explicit: str | None, metadata: ProviderMetadata | None, check: bool, expected: Resolved
) -> None:
    assert resolve_issuer(explicit, metadata, Source.DISCOVERED, check=check) == expected


def configuration(**options: Any) -> ProviderConfiguration:
    return ProviderConfiguration(
        httpx.AsyncClient(), sso_url="https://sso.x", default_jwks_url=DEFAULT, **options
    )


def test_no_known_issuer_is_503_in_production_and_unchecked_in_development() -> None:
    assert configuration().expected_issuer() is None
    with pytest.raises(APIError) as unavailable:
        configuration(issuer_required=True).expected_issuer()
    assert unavailable.value.status == 503
    persisted = configuration(issuer_required=True)
    persisted.seed(TestIssuer(issuer="https://sso.x").discovery_document("https://sso.x"))
    assert persisted.expected_issuer() == "https://sso.x"
    assert persisted.issuer.source is Source.PERSISTED


def test_discovery_is_skipped_when_everything_is_explicit() -> None:
    assert not configuration(
        explicit_issuer="https://i", explicit_jwks_url="https://k"
    ).discovery_needed
    assert not configuration(explicit_jwks_url="https://k", issuer_check=False).discovery_needed
    assert configuration(explicit_issuer="https://i").discovery_needed  # for the JWKS URL
    assert not configuration(discovery=False).discovery_needed


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"jwks_uri": None}, '"jwks_uri" is required'),
        ({"issuer": "http://sso.example"}, '"issuer" MUST use "https" scheme'),
        ({"subject_types_supported": None}, '"subject_types_supported" is required'),
    ],
)
def test_authlib_validates_the_document(change: dict[str, Any], problem: str) -> None:
    document = TestIssuer().discovery_document("https://sso.example")
    valid = provider_metadata(document)
    assert (valid.issuer, valid.jwks_uri) == ("https://sso.test", document["jwks_uri"])
    broken = {k: v for k, v in {**document, **change}.items() if v is not None}
    with pytest.raises(ValueError, match=problem):
        provider_metadata(broken)


@pytest.mark.parametrize("path", [ROOT_DISCOVERY_PATH, BETTER_AUTH_DISCOVERY_PATH])
def test_fetch_finds_the_document_at_either_path(sso: TestIssuer, path: str) -> None:
    sso.discovery_path = path
    result = asyncio.run(fetch(sso.url + "/"))
    assert result.status is DiscoveryStatus.FOUND and result.url == sso.url + path
    assert result.metadata is not None
    assert (result.metadata.issuer, result.metadata.jwks_uri) == (sso.url, sso.jwks_url)


def test_fetch_tells_absent_from_unreachable_from_invalid(sso: TestIssuer) -> None:
    sso.discovery_path = None
    absent = asyncio.run(fetch(sso.url))
    assert absent.status is DiscoveryStatus.NOT_FOUND
    assert sso.url + ROOT_DISCOVERY_PATH in absent.reason

    sso.discovery_path = BETTER_AUTH_DISCOVERY_PATH
    sso.issuer = "http://sso.plain.example"  # not https, not loopback
    invalid = asyncio.run(fetch(sso.url))
    assert invalid.status is DiscoveryStatus.FAILED and '"issuer" MUST use' in invalid.reason

    unreachable = asyncio.run(fetch(f"http://127.0.0.1:{free_port()}"))
    assert unreachable.status is DiscoveryStatus.FAILED
    assert unreachable.reason.startswith("ConnectError")


def test_a_later_failure_keeps_the_last_good_document(sso: TestIssuer) -> None:
    async def scenario() -> tuple[Resolved, Resolved]:
        async with httpx.AsyncClient() as http:
            provider = ProviderConfiguration(
                http, sso_url=sso.url, default_jwks_url=sso.url + "/api/auth/jwks"
            )
            await provider.refresh()
            found = provider.issuer
            sso.stop()
            await provider.refresh()
            assert provider.status is DiscoveryStatus.FAILED
            return found, provider.issuer

    found, after = asyncio.run(scenario())
    assert found == after == Resolved(sso.url, Source.DISCOVERED)


def test_keys_come_from_the_discovered_jwks_uri(sso: TestIssuer) -> None:
    sso.jwks_path = "/elsewhere/jwks.json"

    async def scenario() -> str:
        async with httpx.AsyncClient() as http:
            provider = ProviderConfiguration(
                http, sso_url=sso.url, default_jwks_url=sso.url + "/api/auth/jwks"
            )
            cache = JWKSCache(provider.current_url(), http, location=provider)
            await cache.get(sso.kid_for("EdDSA"))
            return cache.url

    assert asyncio.run(scenario()) == sso.url + "/elsewhere/jwks.json"


def test_a_failed_start_up_fetch_does_not_delay_the_first_lookup(sso: TestIssuer) -> None:
    """The SSO (or this very process, in ``taskflow dev``) may not listen yet at start-up."""

    async def scenario() -> int:
        async with httpx.AsyncClient() as http:
            cache = JWKSCache(sso.jwks_url, http, CachePolicy(min_refresh_interval=3600))
            sso.stop()
            cache.warm_up()
            assert not await cache.refresh()  # the start-up fetch, failed
            sso.restart()
            await cache.get(sso.kid_for("RS256"))  # fetches again at once
            return cache.fetch_count

    assert asyncio.run(scenario()) == 2


async def fetch(url: str) -> Any:
    async with httpx.AsyncClient() as http:
        return await fetch_provider_metadata(http, url)
