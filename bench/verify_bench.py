"""Micro benchmark: the cost of verifying one bearer token when its key is already cached.

    uv run python bench/verify_bench.py [--iterations 3000]

For RS256 (the TaskFlow SSO), ES256 and EdDSA (Better Auth's default) it measures the whole
per-request path of ``Authenticator.authenticate`` — header parse, key lookup in the JWKS
cache, signature check, claim checks, identity — and, for comparison, a service credential
(HS256); then the same token again (answered from the 30 s verified-token cache). No
network: the key set is seeded into the cache as a fetched one would be.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, KeyParameters, KeySet, OKPKey, RSAKey
from taskflow_core.auth import Identity, ServiceCredentials, create_authenticator
from taskflow_core.auth.verifier import VERIFIED_TOKEN_TTL
from taskflow_core.config import Settings

warnings.filterwarnings("ignore", message="EdDSA is deprecated")


def make_key(alg: str) -> RSAKey | ECKey | OKPKey:
    params: KeyParameters = {
        "kid": f"{alg.lower()}-{uuid.uuid4().hex[:6]}",
        "alg": alg,
        "use": "sig",
    }
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=params)
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=params)
    return OKPKey.generate_key("Ed25519", parameters=params)


def user_token(key: RSAKey | ECKey | OKPKey, alg: str) -> str:
    now = int(time.time())
    claims = {
        "sub": "bench-user",
        "email": "bench@example.test",
        "name": "Bench",
        "iss": "https://sso.bench",
        "aud": "taskflow-api",
        "tenant_id": "org-bench",
        "organization_ids": ["org-bench"],
        "iat": now,
        "exp": now + 3600,
    }
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key, algorithms=[alg])


async def measure(
    authenticate: Callable[[str], Awaitable[Identity]], token: str, iterations: int, rounds: int = 5
) -> list[float]:
    """µs per call, one figure per round (the median of rounds is reported)."""
    for _ in range(min(200, iterations)):  # warm-up
        await authenticate(token)
    per_call = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(iterations):
            await authenticate(token)
        per_call.append((time.perf_counter() - started) / iterations * 1e6)
    return per_call


async def main(iterations: int) -> None:
    settings = Settings(
        sso_url="http://sso.invalid",
        jwt_issuer="https://sso.bench",
        jwt_audience="taskflow-api",
        service_secret="bench-service-secret-0123456789abcdef",
    )
    keys = {alg: make_key(alg) for alg in ("RS256", "ES256", "EdDSA")}
    async with httpx.AsyncClient() as http:
        authenticator = create_authenticator(settings, http, service="tasks")
        authenticator.jwks.seed(
            dict(KeySet(list(keys.values())).as_dict(private=False)), fetched_at=time.time()
        )
        cases = {alg: user_token(key, alg) for alg, key in keys.items()}
        cases["service (HS256)"] = ServiceCredentials(settings, "audit").token_for("tasks")
        rows = []
        for label, token in cases.items():
            identity = await authenticator.authenticate(token)  # sanity: it verifies
            assert identity.sub in {"bench-user", "service:audit"}
            authenticator.users.verified_ttl = 0  # every call verifies the signature
            full = await measure(authenticator.authenticate, token, iterations)
            authenticator.users.verified_ttl = VERIFIED_TOKEN_TTL
            again = await measure(authenticator.authenticate, token, iterations)
            rows.append((label, statistics.median(full), min(full), statistics.median(again)))
        assert authenticator.jwks.fetch_count == 0, "the benchmark must not touch the network"

    print(f"Token verification with a cached key ({iterations} calls x 5 rounds, one core)")
    print(f"{'credential':<18}{'verify µs':>11}{'best µs':>9}{'per s':>9}{'repeat-token µs':>17}")
    for label, median, best, repeat_us in rows:
        cached = f"{repeat_us:>17.1f}" if "HS256" not in label else f"{'(not cached)':>17}"
        print(f"{label:<18}{median:>11.1f}{best:>9.1f}{1e6 / median:>9.0f}{cached}")
    print(
        "verify = header, key lookup, signature, claims, identity (median of rounds);"
        f" repeat-token = the same token again within {VERIFIED_TOKEN_TTL:.0f} s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000)
    asyncio.run(main(parser.parse_args().iterations))
