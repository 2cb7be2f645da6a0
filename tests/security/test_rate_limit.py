"""The per-credential rate limit: token-bucket arithmetic, then the 429 a client sees."""

from __future__ import annotations

import falcon
import falcon.asgi
import falcon.testing
import pytest
from taskflow_core.config import Settings
from taskflow_core.ratelimit import RateLimiter, RateLimitMiddleware, credential_key, is_exempt
from taskflow_core.routing import Operation, Route
from taskflow_core.service import Lifecycle, build_app


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills_at_the_configured_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock)  # 60 per minute = 1 per second
    assert all(limiter.acquire("a") == 0 for _ in range(60))
    wait = limiter.acquire("a")
    assert 0 < wait <= 1.0
    clock.now += 1.0
    assert limiter.acquire("a") == 0
    assert limiter.acquire("a") > 0


def test_buckets_are_per_credential() -> None:
    limiter = RateLimiter(2, clock=FakeClock())
    assert limiter.acquire("a") == 0
    assert limiter.acquire("a") == 0
    assert limiter.acquire("a") > 0
    assert limiter.acquire("b") == 0


def test_refill_never_exceeds_capacity() -> None:
    clock = FakeClock()
    limiter = RateLimiter(3, clock=clock)
    clock.now += 3600
    assert [limiter.acquire("a") == 0 for _ in range(4)] == [True, True, True, False]


def test_memory_is_bounded_and_idle_buckets_go_first() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock, max_buckets=3)
    limiter.acquire("busy")
    for i in range(100):
        limiter.acquire(f"flood-{i}")
        limiter.acquire("busy")
    assert len(limiter) <= 3
    clock.now += 120  # everyone is full again
    limiter.acquire("new")
    assert len(limiter) <= 3


def test_zero_is_off() -> None:
    assert RateLimitMiddleware.from_settings(Settings(rate_limit_per_minute=0)) is None
    with pytest.raises(ValueError):
        RateLimiter(0)


@pytest.mark.parametrize(
    ("header", "keyed"),
    [
        (None, False),
        ("", False),
        ("Bearer ", False),
        ("Basic dXNlcjpwYXNz", False),
        ("Bearer abc", True),
        ("bearer abc", True),
    ],
)
def test_credential_key(header: str | None, keyed: bool) -> None:
    key = credential_key(header)
    assert (key is not None) is keyed
    if key is not None:
        assert "abc" not in key and len(key) == 64


def test_exemptions() -> None:
    assert is_exempt("GET", "/health")
    assert is_exempt("GET", "/health/ready")
    assert is_exempt("OPTIONS", "/api/projects")
    assert is_exempt("POST", "/internal/audit/events")
    assert not is_exempt("GET", "/api/projects")


class Echo:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = {"ok": True}


def client(per_minute: int) -> falcon.testing.TestClient:
    app = build_app(
        service="ratelimit-test",
        title="Rate limit test",
        settings=Settings(rate_limit_per_minute=per_minute),
        routes=[Route("/api/echo", Echo(), (Operation("GET", "Echo", "test"),))],
        lifecycle=Lifecycle(None),
    )
    return falcon.testing.TestClient(app)


def test_429_with_retry_after_in_the_error_shape() -> None:
    c = client(3)
    alice = {"Authorization": "Bearer alice-token"}
    assert [c.simulate_get("/api/echo", headers=alice).status_code for _ in range(3)] == [200] * 3
    limited = c.simulate_get("/api/echo", headers=alice)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    body = limited.json
    assert body["status_code"] == 429 and body["status"] == 429
    assert body["error"].startswith("Rate limit exceeded")
    assert {"error", "detail", "status_code", "type", "title", "status"} <= set(body)
    # Another credential, health probes and unauthenticated requests are unaffected.
    other = c.simulate_get("/api/echo", headers={"Authorization": "Bearer bob-token"})
    assert other.status_code == 200
    assert c.simulate_get("/health", headers=alice).status_code == 200


def test_off_by_default_when_zero() -> None:
    c = client(0)
    alice = {"Authorization": "Bearer alice-token"}
    assert {c.simulate_get("/api/echo", headers=alice).status_code for _ in range(50)} == {200}
