"""Credentials only the SSO can vouch for: ``tf_`` agent API keys (``POST /api/api-key/verify``,
then the key owner's organisations) and opaque OAuth access tokens
(``GET /api/auth/oauth2/userinfo``). Answers, refusals included, are cached by credential hash
for a short TTL; one SSO call per credential at a time.

The tenant of an API key comes from a source its owner cannot write: the organisations the SSO
lists for the owner. Better Auth's organization plugin answers ``GET /api/auth/organization/list``
for the user of the request's session, and with the API-key plugin's
``enableSessionForAPIKeys`` the key itself (in ``x-api-key``) opens that session. The key's
``metadata.tenant_id`` (which an owner may set on their own keys) only picks one of those
organisations. A key the SSO cannot place is refused with a message saying what is missing;
it never falls back to the default tenant."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import structlog
from taskflow_core.auth.authenticator import API_KEY_PREFIX
from taskflow_core.auth.identity import Identity, identity_from_claims
from taskflow_core.auth.introspection import TTLCache, Verdict, credential_hash
from taskflow_core.auth.jwks import AUTH_UNAVAILABLE
from taskflow_core.errors import ServiceUnavailable, Unauthorized

log = structlog.get_logger("taskflow.auth_verifier.sso")

API_KEY_VERIFY_PATH = "/api/api-key/verify"
ORGANIZATION_LIST_PATH = "/api/auth/organization/list"
API_KEY_HEADER = "x-api-key"  # Better Auth's default ``apiKeyHeaders``
USERINFO_PATH = "/api/auth/oauth2/userinfo"
INVALID_API_KEY = "Invalid API key"
TOKEN_INVALID = "Token invalid or expired"
NO_ORGANIZATION_LIST = (
    "API key refused: the SSO does not list its owner's organisations (the SSO must accept"
    " API-key sessions: Better Auth's enableSessionForAPIKeys)"
)
NO_ORGANIZATION = "API key refused: its owner belongs to no organisation"

T = TypeVar("T")


def valid_api_key(status: int, body: Any) -> dict[str, Any] | None:
    """The key object of the SSO's ``/api/api-key/verify`` answer when the key is valid."""
    if status == 200 and isinstance(body, dict) and body.get("valid") is True:
        key = body.get("key")
        if isinstance(key, dict) and key.get("userId") and key.get("id") is not None:
            return key
    return None


def owner_organizations(status: int, body: Any) -> tuple[str, ...] | None:
    """The organisation ids of ``GET /api/auth/organization/list`` (``None``: no list)."""
    if status != 200 or not isinstance(body, list):
        return None
    return tuple(
        org["id"] for org in body if isinstance(org, dict) and isinstance(org.get("id"), str)
    )


def requested_tenant(key: dict[str, Any]) -> str | None:
    """The tenant the key's metadata asks for (its owner may write it: a wish, not a fact)."""
    metadata = key.get("metadata") if isinstance(key.get("metadata"), dict) else {}
    wanted = (metadata or {}).get("tenant_id") or key.get("tenantId")
    return wanted.strip() if isinstance(wanted, str) and wanted.strip() else None


def api_key_tenant(
    key: dict[str, Any], organizations: tuple[str, ...] | None
) -> tuple[str | None, str | None]:
    """``(tenant, None)`` for a key its owner's memberships place, else ``(None, why not)``."""
    if organizations is None:
        return None, NO_ORGANIZATION_LIST
    wanted = requested_tenant(key)
    if wanted is not None:
        if wanted in organizations:
            return wanted, None
        return None, (
            f"API key refused: its tenant_id {wanted!r} is not an organisation its owner belongs to"
        )
    if len(organizations) == 1:
        return organizations[0], None
    if not organizations:
        return None, NO_ORGANIZATION
    return None, (
        f"API key refused: it names no tenant_id and its owner belongs to {len(organizations)}"
        " organisations; set the key's metadata.tenant_id to one of them"
    )


def identity_from_api_key(
    key: dict[str, Any], tenant: str, organizations: tuple[str, ...] = ()
) -> Identity:
    """An agent acting for the key's owner: sub = ``userId``, client id/name and
    ``api_key_id`` = the key's (its agent worker is found by that id, in ``tenant``)."""
    name = key.get("name") if isinstance(key.get("name"), str) else None
    key_id = str(key["id"])
    return Identity(
        sub=str(key["userId"]),
        name=name,
        tenant_id=tenant,
        actor_type="agent",
        client_id=key_id,
        client_name=name,
        organization_ids=organizations,
        api_key_id=key_id,
        claims={"api_key_id": key_id},
    )


def api_key_verdict(key: dict[str, Any] | None, organizations: tuple[str, ...] | None) -> Verdict:
    """The verdict on a key from the SSO's two answers (the key, its owner's organisations)."""
    if key is None:
        return Verdict(None, INVALID_API_KEY)
    tenant, refusal = api_key_tenant(key, organizations)
    if tenant is None:
        return Verdict(None, refusal)
    return Verdict(identity_from_api_key(key, tenant, organizations or ()))


def userinfo_verdict(status: int, body: Any) -> Verdict:
    """The SSO's userinfo answer as a verdict: 401 → invalid or expired, as in the old API.
    Any other refusal (the old API's "Userinfo request failed: <code>") means the same to the
    caller, whose token it is: an SSO without that endpoint (404) knows no opaque token."""
    if status == 200 and isinstance(body, dict):
        try:
            return Verdict(identity_from_claims(body))
        except ValueError:
            return Verdict(None, TOKEN_INVALID)
    if status == 401:
        return Verdict(None, TOKEN_INVALID)
    return Verdict(None, f"{TOKEN_INVALID} (the SSO's userinfo endpoint answered {status})")


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
                verdict = await self._api_key_verdict(credential)
                self.cache.put(key, verdict, self.api_key_ttl)
            else:
                verdict = await self._ask(self._userinfo, credential, userinfo_verdict)
                if verdict.identity is None:
                    log.info("opaque_token_refused", reason=verdict.error)
                self.cache.put(key, verdict, self.opaque_ttl)
            future.set_result(verdict)
            return verdict
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiting callers re-raise it, nobody else must
            raise
        finally:
            del self._inflight[key]

    async def _api_key_verdict(self, credential: str) -> Verdict:
        key = await self._ask(self._verify_api_key, credential, valid_api_key)
        if key is None:
            return Verdict(None, INVALID_API_KEY)
        organizations = await self._ask(self._organizations, credential, owner_organizations)
        verdict = api_key_verdict(key, organizations)
        if verdict.identity is None:
            log.info("api_key_refused", key_id=str(key.get("id")), reason=verdict.error)
        return verdict

    async def _ask(
        self,
        call: Callable[[str], Awaitable[httpx.Response]],
        credential: str,
        interpret: Callable[[int, Any], T],
    ) -> T:
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

    async def _organizations(self, key: str) -> httpx.Response:
        return await self.http.get(
            f"{self.sso_url}{ORGANIZATION_LIST_PATH}",
            headers={API_KEY_HEADER: key},
            timeout=self.timeout,
        )

    async def _userinfo(self, token: str) -> httpx.Response:
        return await self.http.get(
            f"{self.sso_url}{USERINFO_PATH}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=self.timeout,
        )
