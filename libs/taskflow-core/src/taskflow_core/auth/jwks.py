"""The JWKS cache: keys fetched from ``JWKS_URL`` (or where OIDC discovery says), refreshed on a
TTL, refetched on an unknown ``kid`` at most once per ``JWKS_MIN_REFRESH_INTERVAL``, and kept
(stale) while the SSO is down.

The decision of what to do for one lookup is the pure function :func:`plan_lookup`; the
:class:`JWKSCache` only carries it out (one shared in-flight fetch per process)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import httpx
import structlog
from joserfc.jwk import Key, KeySet

from ..errors import ServiceUnavailable, Unauthorized

log = structlog.get_logger("taskflow.auth.jwks")

JWKS_FETCH_TIMEOUT = 5.0
AUTH_UNAVAILABLE = "Authentication service unavailable"
UNKNOWN_KID = "Token signing key not found in JWKS"

# Called after every successful fetch with the public key set and the fetch time (epoch
# seconds): every service persists the last good set so a restart during an SSO outage still
# verifies (``snapshot.LastGoodKeySet``).
KeySetListener = Callable[[dict[str, Any], float], Awaitable[None]]


class KeySetLocation(Protocol):
    """Where the key set is, when OIDC discovery may move it (``ProviderConfiguration``)."""

    def current_url(self) -> str: ...

    async def refresh(self) -> None:
        """Ask the SSO again (never raises)."""


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
    """Signing keys by ``kid`` from the SSO's JWKS, shared by every request of the process.

    ``url`` is where the keys come from; with ``location``, the location is refreshed with each
    fetch of the keys (and ``url`` then says where the keys held were fetched)."""

    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        policy: CachePolicy | None = None,
        *,
        now: Callable[[], float] = time.time,
        on_fetched: KeySetListener | None = None,
        location: KeySetLocation | None = None,
    ) -> None:
        self.url = url
        self.http = http
        self.policy = policy or CachePolicy()
        self.now = now
        self.on_fetched = on_fetched
        self.location = location
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

    def seed(self, document: dict[str, Any], fetched_at: float, url: str | None = None) -> None:
        """Start from a key set fetched earlier (the persisted last good copy)."""
        self._keys = import_key_set(document)
        self._document = document
        self._fetched_at = fetched_at
        self.url = url or self.url

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

    async def refresh_if_due(self) -> None:
        """Join the fetch in flight, or fetch when the minimum interval allows it (used when
        something other than a ``kid`` is missing, e.g. the issuer discovery gives)."""
        last = self._last_attempt
        if (
            self.state.fetching
            or last is None
            or self.now() - last >= (self.policy.min_refresh_interval)
        ):
            await self.refresh()

    def warm_up(self) -> None:
        """Fetch in the background at start-up. A failure here does not count against the
        minimum interval: the first lookup may try again at once (the SSO, or this very
        process in ``taskflow dev``, may not be listening yet)."""
        if self._inflight is not None and not self._inflight.done():
            return
        before = self._last_attempt
        task = self._start_fetch(warm_up=True)
        stamp = self._last_attempt

        def forget_failure(done: asyncio.Task[bool]) -> None:
            failed = done.cancelled() or done.exception() is not None or not done.result()
            if failed and self._last_attempt == stamp:
                self._last_attempt = before

        task.add_done_callback(forget_failure)

    def _start_fetch(self, *, warm_up: bool = False) -> asyncio.Task[bool]:
        """The fetch in flight, started now if there is none (synchronously, so every lookup
        that follows in the same loop iteration sees it)."""
        if self._inflight is None or self._inflight.done():
            self._last_attempt = self.now()
            self._inflight = asyncio.ensure_future(self._fetch(warm_up=warm_up))
        return self._inflight

    def _revalidate_in_background(self) -> None:
        self._start_fetch()

    async def _download(self, url: str) -> dict[str, Key]:
        response = await self.http.get(url, timeout=JWKS_FETCH_TIMEOUT)
        response.raise_for_status()
        return import_key_set(response.json())

    async def _fetch(self, *, warm_up: bool = False) -> bool:
        self.fetch_count += 1
        try:
            if self.location is None:
                url = self.url
                keys = await self._download(url)
            else:
                keys, url = await self._locate_and_download()
        except Exception as exc:  # network, HTTP status, JSON or key errors alike
            url = self.url if self.location is None else self.location.current_url()
            error = f"{type(exc).__name__}: {exc}"
            if self._keys:
                log.warning(
                    "jwks_fetch_failed_using_stale_keys",
                    url=url,
                    error=error,
                    key_age_s=round(self.age or 0.0, 1),
                )
            elif warm_up:
                log.warning("jwks_first_fetch_failed", url=url, error=error)
            else:
                log.error("jwks_fetch_failed_no_keys", url=url, error=f"{type(exc).__name__}")
            return False
        fetched_at = self.now()
        public = {"keys": [key.as_dict(private=False) for key in keys.values()]}
        self._keys, self._document, self._fetched_at = keys, public, fetched_at
        self.url = url
        log.info("jwks_fetched", url=url, kids=sorted(keys))
        if self.on_fetched is not None:
            try:
                await self.on_fetched(public, fetched_at)
            except Exception:  # persisting is best effort: the keys in memory still verify
                log.exception("jwks_listener_failed", url=self.url)
        return True

    async def _locate_and_download(self) -> tuple[dict[str, Key], str]:
        """The location is refreshed while the keys are fetched from where it pointed (one
        round trip, one timeout, in the usual case); fetched again only if it moved."""
        assert self.location is not None
        url = self.location.current_url()
        _, downloaded = await asyncio.gather(
            self.location.refresh(), self._download(url), return_exceptions=True
        )
        moved = self.location.current_url()
        if moved != url:
            return await self._download(moved), moved
        if isinstance(downloaded, BaseException):
            raise downloaded
        return downloaded, url

    async def close(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
            with contextlib.suppress(BaseException):
                await self._inflight
