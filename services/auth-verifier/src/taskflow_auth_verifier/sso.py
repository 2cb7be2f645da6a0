"""Credentials only the SSO can vouch for: ``tf_`` agent API keys (``POST /api/api-key/verify``)
and opaque OAuth access tokens (``GET /api/auth/oauth2/userinfo``). Answers, refusals included,
are cached by credential hash for a short TTL; one SSO call per credential at a time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import structlog
from taskflow_core.auth.authenticator import API_KEY_PREFIX
from taskflow_core.auth.identity import Identity, identity_from_claims
from taskflow_core.auth.introspection import TTLCache, Verdict, credential_hash
from taskflow_core.auth.jwks import AUTH_UNAVAILABLE
from taskflow_core.config import DEFAULT_TENANT
from taskflow_core.errors import ServiceUnavailable, Unauthorized

log = structlog.get_logger("taskflow.auth_verifier.sso")

API_KEY_VERIFY_PATH = "/api/api-key/verify"
USERINFO_PATH = "/api/auth/oauth2/userinfo"
INVALID_API_KEY = "Invalid API key"
TOKEN_INVALID = "Token invalid or expired"


def identity_from_api_key(key: dict[str, Any]) -> Identity:
    """An agent acting for the key's owner: sub = ``userId``, client id/name = the key's."""
    metadata = key.get("metadata") if isinstance(key.get("metadata"), dict) else {}
    tenant = (metadata or {}).get("tenant_id") or key.get("tenantId") or DEFAULT_TENANT
    name = key.get("name") if isinstance(key.get("name"), str) else None
    return Identity(
        sub=str(key["userId"]),
        name=name,
        tenant_id=str(tenant),
        actor_type="agent",
        client_id=str(key["id"]) if key.get("id") is not None else None,
        client_name=name,
        claims={"api_key_id": key.get("id")},
    )


def api_key_verdict(status: int, body: Any) -> Verdict:
    """The SSO's answer to ``/api/api-key/verify`` as a verdict (5xx is handled by the caller)."""
    if status == 200 and isinstance(body, dict) and body.get("valid") is True:
        key = body.get("key")
        if isinstance(key, dict) and key.get("userId"):
            return Verdict(identity_from_api_key(key))
    return Verdict(None, INVALID_API_KEY)


def userinfo_verdict(status: int, body: Any) -> Verdict:
    """The SSO's userinfo answer as a verdict (as the old API: 401 → invalid or expired)."""
    if status == 200 and isinstance(body, dict):
        try:
            return Verdict(identity_from_claims(body))
        except ValueError:
            return Verdict(None, TOKEN_INVALID)
    if status == 401:
        return Verdict(None, TOKEN_INVALID)
    return Verdict(None, f"Userinfo request failed: {status}")


class SsoCredentialChecker:
    """The auth-verifier's introspector (``taskflow_core.auth.introspection.Introspector``)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        sso_url: str,
        *,
        api_key_ttl: float,
        opaque_ttl: float,
        timeout: float = 5.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.http = http
        self.sso_url = sso_url.rstrip("/")
        self.api_key_ttl = api_key_ttl
        self.opaque_ttl = opaque_ttl
        self.timeout = timeout
        self.cache: TTLCache[Verdict] = TTLCache(now=now)
        self._inflight: dict[str, asyncio.Future[Verdict]] = {}
        self.sso_calls = 0

    async def introspect(self, credential: str) -> Identity:
        verdict = await self.verdict(credential)
        if verdict.identity is None:
            raise Unauthorized(verdict.error or TOKEN_INVALID, error="invalid_token")
        return verdict.identity

    def remaining(self, credential: str) -> float:
        """Seconds the cached answer for ``credential`` stays valid (callers cache no longer)."""
        return self.cache.remaining(credential_hash(credential))

    async def verdict(self, credential: str) -> Verdict:
        key = credential_hash(credential)
        hit = self.cache.get(key)
        if hit is not None:
            return hit.value
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            if credential.startswith(API_KEY_PREFIX):
                verdict = await self._ask(self._verify_api_key, credential, api_key_verdict)
                self.cache.put(key, verdict, self.api_key_ttl)
            else:
                verdict = await self._ask(self._userinfo, credential, userinfo_verdict)
                self.cache.put(key, verdict, self.opaque_ttl)
            future.set_result(verdict)
            return verdict
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiting callers re-raise it, nobody else must
            raise
        finally:
            del self._inflight[key]

    async def _ask(
        self,
        call: Callable[[str], Awaitable[httpx.Response]],
        credential: str,
        interpret: Callable[[int, Any], Verdict],
    ) -> Verdict:
        self.sso_calls += 1
        try:
            response = await call(credential)
        except httpx.HTTPError as exc:
            log.warning("sso_unreachable", error=type(exc).__name__)
            raise ServiceUnavailable(AUTH_UNAVAILABLE) from exc
        if response.status_code >= 500:
            log.warning("sso_error", status=response.status_code)
            raise ServiceUnavailable(AUTH_UNAVAILABLE)
        try:
            body = response.json()
        except ValueError:
            body = None
        return interpret(response.status_code, body)

    async def _verify_api_key(self, key: str) -> httpx.Response:
        return await self.http.post(
            f"{self.sso_url}{API_KEY_VERIFY_PATH}", json={"key": key}, timeout=self.timeout
        )

    async def _userinfo(self, token: str) -> httpx.Response:
        return await self.http.get(
            f"{self.sso_url}{USERINFO_PATH}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=self.timeout,
        )
