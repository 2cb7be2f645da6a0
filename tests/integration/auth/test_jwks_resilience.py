"""The key cache under SSO trouble, with real processes: the SSO stops, rotates keys, is flooded
with random ``kid``s, or is down while the verifier restarts."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx

from tests.conftest import StartService
from tests.integration.auth.conftest import SERVICE_SECRET, StartVerifier
from tests.support.issuer import TestIssuer
from tests.support.processes import ServiceProcess, free_port


def verify(verifier: ServiceProcess, token: str) -> httpx.Response:
    return httpx.get(f"{verifier.url}/verify", headers={"Authorization": f"Bearer {token}"})


def eventually(check: object, within: float = 10.0) -> bool:
    """Poll ``check()`` until it is true (behaviour that happens in the background)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def log_events(proc: ServiceProcess) -> list[dict[str, object]]:
    assert proc.log_path is not None
    events = []
    for line in proc.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


def test_sso_stopped_after_first_fetch_still_verifies(
    start_verifier: StartVerifier, own_issuer: TestIssuer
) -> None:
    verifier = start_verifier(
        own_issuer, JWKS_CACHE_TTL="1", JWKS_MIN_REFRESH_INTERVAL="1", JWKS_STALE_TTL="3600"
    )
    tokens = {alg: own_issuer.token("u1", alg=alg) for alg in ("RS256", "ES256", "EdDSA")}
    assert verify(verifier, tokens["RS256"]).status_code == 200
    own_issuer.stop()
    time.sleep(1.2)  # past the 1 s TTL: the keys held are now stale
    for token in tokens.values():
        response = verify(verifier, token)
        assert response.status_code == 200, response.text
    # ... and the failed refresh behind the scenes is logged as a warning.
    assert eventually(
        lambda: any(
            e.get("event") == "jwks_fetch_failed_using_stale_keys" and e.get("level") == "warning"
            for e in log_events(verifier)
        )
    )
    assert httpx.get(f"{verifier.url}/jwks").status_code == 200  # the relay serves them too


def test_sso_down_from_the_start_is_503(start_verifier: StartVerifier) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    verifier = start_verifier(nobody)
    sso = TestIssuer()  # keys only, never served
    response = verify(verifier, sso.token("u1"))
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "Authentication service unavailable"
    assert body["status_code"] == 503 and response.headers["Retry-After"]
    assert httpx.get(f"{verifier.url}/jwks").status_code == 503
    # A missing credential is still a plain 401: nothing to verify, nothing unavailable.
    assert httpx.get(f"{verifier.url}/verify").status_code == 401


def test_new_kid_is_picked_up_without_restart(
    start_verifier: StartVerifier, own_issuer: TestIssuer
) -> None:
    verifier = start_verifier(own_issuer, JWKS_MIN_REFRESH_INTERVAL="1")
    assert verify(verifier, own_issuer.token("u1")).status_code == 200
    rotated = own_issuer.add_key("EdDSA", kid="rotated-2026")
    token = own_issuer.token("u1", alg="EdDSA", kid=rotated)
    assert eventually(lambda: verify(verifier, token).status_code == 200)
    assert verify(verifier, own_issuer.token("u2", alg="RS256")).status_code == 200


def test_random_kid_flood_costs_at_most_one_fetch_per_30s(
    start_verifier: StartVerifier, own_issuer: TestIssuer
) -> None:
    # Counted from the start: the verifier fetches the key set once at start-up.
    started = time.monotonic()
    verifier = start_verifier(own_issuer)  # default JWKS_MIN_REFRESH_INTERVAL = 30 s
    stranger = own_issuer.unpublished_key("RS256")
    tokens = [
        own_issuer.token("attacker", key=stranger, header={"kid": uuid.uuid4().hex})
        for _ in range(1000)
    ]

    async def flood() -> list[int]:
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(base_url=verifier.url, limits=limits) as client:
            semaphore = asyncio.Semaphore(20)

            async def one(token: str) -> int:
                async with semaphore:
                    headers = {"Authorization": f"Bearer {token}"}
                    return (await client.get("/verify", headers=headers)).status_code

            return await asyncio.gather(*(one(t) for t in tokens))

    statuses = asyncio.run(flood())
    elapsed = time.monotonic() - started
    assert set(statuses) == {401}
    assert own_issuer.jwks_fetches <= 1 + int(elapsed // 30), (own_issuer.jwks_fetches, elapsed)
    fetches = own_issuer.jwks_fetches
    assert verify(verifier, own_issuer.token("u1")).status_code == 200  # known kids unharmed
    assert own_issuer.jwks_fetches == fetches


def test_verifier_restarted_during_sso_outage_still_verifies(
    start_verifier: StartVerifier, own_issuer: TestIssuer
) -> None:
    sso_url = own_issuer.url
    first = start_verifier(sso_url)
    token = own_issuer.token("u1", alg="ES256")
    assert verify(first, token).status_code == 200
    first.stop()
    own_issuer.stop()

    second = start_verifier(sso_url)  # same SSO, now unreachable; same database
    response = verify(second, token)
    assert response.status_code == 200, response.text
    assert response.headers["X-User-Id"] == "u1"
    assert httpx.get(f"{second.url}/jwks").json()["keys"]  # relayed from the snapshot


def test_jwks_relay_serves_the_sso_key_set(
    start_verifier: StartVerifier, own_issuer: TestIssuer
) -> None:
    verifier = start_verifier(own_issuer)
    relayed = httpx.get(f"{verifier.url}/jwks")
    assert relayed.status_code == 200
    assert {k["kid"] for k in relayed.json()["keys"]} == set(own_issuer.keys)
    assert all("d" not in key for key in relayed.json()["keys"])  # public halves only


def test_a_service_can_take_its_keys_from_the_relay(
    start_verifier: StartVerifier,
    own_issuer: TestIssuer,
    start_service: StartService,
    db_url: str,
) -> None:
    verifier = start_verifier(own_issuer)
    tasks = start_service(
        "tasks",
        DATABASE_URL=db_url,
        SSO_URL=own_issuer.url,
        JWKS_URL=f"{verifier.url}/jwks",
        SERVICE_SECRET=SERVICE_SECRET,
    )
    headers = {"Authorization": f"Bearer {own_issuer.token('relay-user', alg='EdDSA')}"}
    response = httpx.get(f"{tasks.url}/api/projects", headers=headers)
    assert response.status_code == 200, response.text
    assert own_issuer.jwks_fetches == 1  # the verifier fetched; tasks asked the verifier
