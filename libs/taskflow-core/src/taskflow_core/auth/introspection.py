"""Credentials a service cannot check itself (``tf_`` agent API keys, opaque SSO tokens) are
handed to the auth-verifier's ``POST /introspect`` and the answer is cached briefly."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import structlog

from ..errors import APIError, ServiceUnavailable, Unauthorized
from .cache import TTLCache, credential_hash
from .identity import Identity, identity_from_dict
from .jwks import AUTH_UNAVAILABLE
from .service_tokens import ServiceCredentials

log = structlog.get_logger("taskflow.auth.introspection")

__all__ = ["RemoteIntrospector", "TTLCache", "Verdict", "credential_hash"]

INTROSPECT_PATH = "/introspect"
VERIFIER_SERVICE = "auth-verifier"


@dataclass(frozen=True)
class Verdict:
    """An introspection answer: an identity, or the reason the credential was refused."""

    identity: Identity | None
    error: str | None = None


class Introspector(Protocol):
    async def introspect(self, credential: str) -> Identity:
        """The identity behind ``credential``; ``Unauthorized`` or ``ServiceUnavailable``."""
        ...


class RemoteIntrospector:
    """Asks the auth-verifier, with a service credential, and caches the answer (negative
    answers too) for at most ``ttl`` and never longer than the verifier's own cache entry, so a
    revoked key is refused within one TTL end to end."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        verifier_url: str,
        credentials: ServiceCredentials,
        ttl: float,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.http = http
        self.url = verifier_url.rstrip("/") + INTROSPECT_PATH
        self.credentials = credentials
        self.ttl = ttl
        self.cache: TTLCache[Verdict] = TTLCache(now=now)

    async def introspect(self, credential: str) -> Identity:
        key = credential_hash(credential)
        hit = self.cache.get(key)
        verdict = hit.value if hit is not None else await self._ask(credential, key)
        if verdict.identity is None:
            raise Unauthorized(verdict.error or "Token invalid or expired", error="invalid_token")
        return verdict.identity

    async def _ask(self, credential: str, key: str) -> Verdict:
        token = self.credentials.token_for(VERIFIER_SERVICE)
        try:
            response = await self.http.post(
                self.url,
                json={"token": credential},
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.HTTPError as exc:
            log.warning("introspection_unreachable", error=type(exc).__name__)
            raise ServiceUnavailable(AUTH_UNAVAILABLE) from exc
        if response.status_code != 200:
            if response.status_code >= 500:
                log.warning("introspection_failed", status=response.status_code)
                raise ServiceUnavailable(AUTH_UNAVAILABLE)
            # Our own service credential was refused: a configuration error, not the user's.
            log.error(
                "introspection_refused",
                status=response.status_code,
                hint="every service must share the same SERVICE_SECRET",
            )
            raise APIError(502, "Authentication service refused the introspection request")
        body: dict[str, Any] = response.json()
        verdict = verdict_from_answer(body)
        ttl = min(self.ttl, float(body.get("expires_in") or self.ttl))
        self.cache.put(key, verdict, ttl)
        return verdict


def verdict_from_answer(body: dict[str, Any]) -> Verdict:
    """Reads ``{"active": true, "identity": {...}}`` / ``{"active": false, "error": ...}``."""
    if body.get("active") is True and isinstance(body.get("identity"), dict):
        try:
            return Verdict(identity_from_dict(body["identity"]))
        except (KeyError, TypeError, ValueError):
            return Verdict(None, "Token invalid or expired")
    return Verdict(None, str(body.get("error") or "Token invalid or expired"))
