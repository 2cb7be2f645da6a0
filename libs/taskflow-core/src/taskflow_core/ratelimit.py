"""A per-credential rate limit: an in-process token bucket per bearer credential.

``RATE_LIMIT_PER_MINUTE`` = N (0 = off) gives each credential a bucket of N tokens that refills
at N per minute, so a client may burst up to N requests and then sustain N per minute. A request
with an empty bucket gets 429 in the JSON error shape with ``Retry-After`` (whole seconds until a
token is back).

Trade-offs (chosen for a small, dependency-free first line of defence):

- In-process: each worker process of each replica keeps its own buckets, so the effective limit
  is N x (processes behind the gateway). Good enough to stop a runaway script or agent; a strict
  global quota needs shared state (Redis, or ``limit_req`` keyed on the credential in nginx).
- Keyed by a SHA-256 of the credential, before it is verified: verifying first would let a flood
  of bad tokens cost a signature check each, and no credential is held in memory in clear. A
  stolen token can exhaust its owner's bucket, but then the attacker already is that user.
- Requests without a credential are not limited here: they are answered 401 by the auth
  middleware at the cost of a header check; per-IP limits belong to the gateway, which sees
  client addresses (behind nginx every request comes from the same address).
- Service-to-service routes (``/internal/...``), health probes, docs and CORS preflights are
  exempt: throttling the outbox relay would only delay audit delivery.
- Memory is bounded: at most ``max_buckets`` credentials are tracked; idle buckets (full again)
  are dropped first, then the least recently used. A flood of distinct credentials can thus
  reset a real client's bucket, which only makes the limit more lenient, never stricter.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import falcon.asgi

from .config import Settings
from .errors import APIError

EXEMPT_PATHS = frozenset({"/", "/health", "/health/ready", "/openapi.json", "/docs", "/redoc"})
EXEMPT_PREFIXES = ("/internal/", "/docs/")


@dataclass
class TokenBucket:
    """``tokens`` left (out of ``capacity``) as of ``updated`` (a monotonic timestamp)."""

    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by credential hash; pure bookkeeping, no I/O (unit-testable)."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = 10_000,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.capacity = float(per_minute)
        self.refill_per_second = per_minute / 60.0
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def acquire(self, key: str) -> float:
        """Take one token for ``key``; return 0 when allowed, else the seconds until one is back."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(tokens=self.capacity, updated=now)
            self._buckets[key] = bucket
            self._evict(now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.capacity, bucket.tokens + elapsed * self.refill_per_second)
            bucket.updated = now
            self._buckets.move_to_end(key)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.refill_per_second

    def remaining(self, key: str) -> int:
        """Whole tokens left for ``key`` (as of its last request)."""
        bucket = self._buckets.get(key)
        return int(self.capacity if bucket is None else bucket.tokens)

    def __len__(self) -> int:
        return len(self._buckets)

    def _evict(self, now: float) -> None:
        if len(self._buckets) <= self.max_buckets:
            return
        # A bucket idle long enough to be full again is equivalent to a fresh one: drop those.
        full_after = self.capacity / self.refill_per_second
        for key in [k for k, b in self._buckets.items() if now - b.updated >= full_after]:
            del self._buckets[key]
        while len(self._buckets) > self.max_buckets:
            self._buckets.popitem(last=False)


def credential_key(authorization: str | None) -> str | None:
    """A stable, non-reversible key for the bearer credential in ``authorization``, if any."""
    if not authorization:
        return None
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        return None
    return hashlib.sha256(credential.encode("utf-8", "surrogatepass")).hexdigest()


def is_exempt(method: str, path: str) -> bool:
    """Requests the limit never applies to: preflights, probes, docs, internal routes."""
    return method == "OPTIONS" or path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES)


class RateLimitMiddleware:
    """Answer 429 + ``Retry-After`` once a credential has spent its bucket (see module doc)."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimitMiddleware | None:
        """The middleware for ``settings.rate_limit_per_minute``, or None when it is 0 (off)."""
        if settings.rate_limit_per_minute <= 0:
            return None
        return cls(RateLimiter(settings.rate_limit_per_minute))

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        if is_exempt(req.method, req.path):
            return
        key = credential_key(req.get_header("Authorization"))
        if key is None:
            return
        wait = self.limiter.acquire(key)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise APIError(
                429,
                f"Rate limit exceeded, retry in {retry_after} s",
                headers={
                    "Retry-After": str(retry_after),
                    "X-RateLimit-Limit": str(int(self.limiter.capacity)),
                    "X-RateLimit-Remaining": "0",
                },
            )
