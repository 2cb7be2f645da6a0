"""The JWKS cache: keys fetched from ``JWKS_URL``, refreshed on a TTL, refetched on an unknown
``kid`` at most once per ``JWKS_MIN_REFRESH_INTERVAL``, and kept (stale) while the SSO is down.

The decision of what to do for one lookup is the pure function :func:`plan_lookup`; the
:class:`JWKSCache` only carries it out (one shared in-flight fetch per process)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import httpx
import structlog
from joserfc.jwk import Key, KeySet

from ..errors import ServiceUnavailable, Unauthorized

log = structlog.get_logger("taskflow.auth.jwks")

JWKS_FETCH_TIMEOUT = 5.0
AUTH_UNAVAILABLE = "Authentication service unavailable"
UNKNOWN_KID = "Token signing key not found in JWKS"

# Called after every successful fetch with the raw key set and the fetch time (epoch seconds):
# the auth-verifier persists the last good set so a restart during an SSO outage still verifies.
KeySetListener = Callable[[dict[str, Any], float], Awaitable[None]]


class Plan(Enum):
    USE = "use"  # the key is held and fresh enough
    USE_AND_REVALIDATE = "use_and_revalidate"  # held but past its TTL: use it, refresh behind
    FETCH = "fetch"  # fetch now (shared) and look again
    UNKNOWN_KID = "unknown_kid"  # keys are held, this kid is not among them: 401
    UNAVAILABLE = "unavailable"  # nothing usable held and no fetch allowed yet: 503


@dataclass(frozen=True)
class CacheState:
    """What the cache knows, as plain numbers (epoch seconds), for :func:`plan_lookup`."""

    kids: frozenset[str]
    fetched_at: float | None  # last successful fetch
    last_attempt: float | None  # last fetch started, successful or not
    fetching: bool = False  # a fetch is in flight: join it rather than start another


@dataclass(frozen=True)
class CachePolicy:
    ttl: float = 3600.0
    stale_ttl: float = 86400.0
    min_refresh_interval: float = 30.0


def plan_lookup(state: CacheState, kid: str, now: float, policy: CachePolicy) -> Plan:
    """What to do to find ``kid``.

    - fresh keys (age < ttl) holding ``kid`` → use;
    - usable stale keys (age < stale_ttl) holding ``kid`` → use, and refresh in the background
      when a fetch is allowed (a down SSO is retried at most once per min interval);
    - otherwise fetch, but never more than once per ``min_refresh_interval`` (a flood of
      random ``kid``s costs one fetch, not thousands); a fetch in flight is joined;
    - when no fetch is allowed: 401 if usable keys are held, 503 if nothing usable is held."""
    last = state.last_attempt
    may_fetch = last is None or now - last >= policy.min_refresh_interval
    age = None if state.fetched_at is None else now - state.fetched_at
    usable = age is not None and age < max(policy.stale_ttl, policy.ttl)
    if usable and kid in state.kids:
        if age is not None and age < policy.ttl:
            return Plan.USE
        return Plan.USE_AND_REVALIDATE if may_fetch else Plan.USE
    if may_fetch or state.fetching:
        return Plan.FETCH
    return Plan.UNKNOWN_KID if usable else Plan.UNAVAILABLE


def import_key_set(document: Any) -> dict[str, Key]:
    """The signing keys of a JWKS document by ``kid``; keys we cannot use are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("JWKS document has no 'keys' list")
    keys: dict[str, Key] = {}
    for raw in document["keys"]:
        if not isinstance(raw, dict) or raw.get("use") == "enc" or not raw.get("kid"):
            continue
        try:
            key = KeySet.import_key_set({"keys": [raw]}).keys[0]
        except Exception as exc:  # an exotic key must not hide the usable ones
            log.warning("jwks_key_skipped", kid=raw.get("kid"), error=str(exc))
            continue
        keys[str(raw["kid"])] = key
    if not keys:
        raise ValueError("JWKS document holds no usable signing key")
    return keys


class JWKSCache:
    """Signing keys by ``kid`` for one JWKS URL, shared by every request of the process."""

    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        policy: CachePolicy | None = None,
        *,
        now: Callable[[], float] = time.time,
        on_fetched: KeySetListener | None = None,
    ) -> None:
        self.url = url
        self.http = http
        self.policy = policy or CachePolicy()
        self.now = now
        self.on_fetched = on_fetched
        self.fetch_count = 0
        self._keys: dict[str, Key] = {}
        self._document: dict[str, Any] | None = None
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._inflight: asyncio.Task[bool] | None = None

    # state ---------------------------------------------------------------------------------
    @property
    def state(self) -> CacheState:
        fetching = self._inflight is not None and not self._inflight.done()
        return CacheState(frozenset(self._keys), self._fetched_at, self._last_attempt, fetching)

    @property
    def document(self) -> dict[str, Any] | None:
        """The last good JWKS document (public keys only), for the relay."""
        return self._document

    @property
    def age(self) -> float | None:
        return None if self._fetched_at is None else self.now() - self._fetched_at

    def seed(self, document: dict[str, Any], fetched_at: float) -> None:
        """Start from a key set fetched earlier (the verifier's persisted copy)."""
        self._keys = import_key_set(document)
        self._document = document
        self._fetched_at = fetched_at

    # lookups -------------------------------------------------------------------------------
    async def get(self, kid: str) -> Key:
        """The key for ``kid``. Raises ``Unauthorized`` for an unknown kid and
        ``ServiceUnavailable`` when no key set is held and the SSO cannot be reached."""
        plan = plan_lookup(self.state, kid, self.now(), self.policy)
        if plan is Plan.USE_AND_REVALIDATE:
            self._revalidate_in_background()
            return self._keys[kid]
        if plan is Plan.FETCH:
            await self.refresh()
            plan = plan_lookup(self.state, kid, self.now(), self.policy)
        if plan in (Plan.USE, Plan.USE_AND_REVALIDATE):
            return self._keys[kid]
        if plan is Plan.UNAVAILABLE or self.age is None:
            raise ServiceUnavailable(AUTH_UNAVAILABLE)
        raise Unauthorized(UNKNOWN_KID, error="invalid_token")

    async def current_document(self) -> dict[str, Any]:
        """The key set to relay: fetched when nothing usable is held (503 if impossible)."""
        usable = self.age is not None and self.age < max(self.policy.stale_ttl, self.policy.ttl)
        if not usable:
            now = self.now()
            last = self._last_attempt
            if (
                self.state.fetching
                or last is None
                or now - last >= self.policy.min_refresh_interval
            ):
                await self.refresh()
        elif self.age is not None and self.age >= self.policy.ttl:
            self._revalidate_in_background()
        if self._document is None or self.age is None:
            raise ServiceUnavailable(AUTH_UNAVAILABLE)
        return self._document

    # fetching ------------------------------------------------------------------------------
    async def refresh(self) -> bool:
        """Fetch the key set once for every concurrent caller; True when it succeeded."""
        return await asyncio.shield(self._start_fetch())

    def _start_fetch(self) -> asyncio.Task[bool]:
        """The fetch in flight, started now if there is none (synchronously, so every lookup
        that follows in the same loop iteration sees it)."""
        if self._inflight is None or self._inflight.done():
            self._last_attempt = self.now()
            self._inflight = asyncio.ensure_future(self._fetch())
        return self._inflight

    def _revalidate_in_background(self) -> None:
        self._start_fetch()

    async def _fetch(self) -> bool:
        self.fetch_count += 1
        try:
            response = await self.http.get(self.url, timeout=JWKS_FETCH_TIMEOUT)
            response.raise_for_status()
            document = response.json()
            keys = import_key_set(document)
        except Exception as exc:  # network, HTTP status, JSON or key errors alike
            if self._keys:
                log.warning(
                    "jwks_fetch_failed_using_stale_keys",
                    url=self.url,
                    error=f"{type(exc).__name__}: {exc}",
                    key_age_s=round(self.age or 0.0, 1),
                )
            else:
                log.error("jwks_fetch_failed_no_keys", url=self.url, error=f"{type(exc).__name__}")
            return False
        fetched_at = self.now()
        public = {"keys": [key.as_dict(private=False) for key in keys.values()]}
        self._keys, self._document, self._fetched_at = keys, public, fetched_at
        log.info("jwks_fetched", url=self.url, kids=sorted(keys))
        if self.on_fetched is not None:
            try:
                await self.on_fetched(public, fetched_at)
            except Exception:  # persisting is best effort: the keys in memory still verify
                log.exception("jwks_listener_failed", url=self.url)
        return True

    async def close(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
            with contextlib.suppress(BaseException):
                await self._inflight
