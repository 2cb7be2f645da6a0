"""HTTP of the auth-verifier: forward-auth, introspection, the JWKS relay, the dev issuer."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import falcon.asgi
from marshmallow import RAISE, Schema, fields, validate
from taskflow_core.auth.authenticator import Authenticator, CredentialKind, credential_kind
from taskflow_core.auth.dev_issuer import DevIssuer
from taskflow_core.auth.identity import (
    NO_TENANT_CLAIM,
    Identity,
    identity_to_dict,
    require_claimed_tenant,
)
from taskflow_core.auth.jwks import JWKSCache
from taskflow_core.auth.middleware import bearer_token
from taskflow_core.auth.verifier import MAX_TOKEN_BYTES
from taskflow_core.errors import Unauthorized

from .sso import SsoCredentialChecker

IDENTITY_HEADERS = {
    "X-User-Id": "sub",
    "X-User-Email": "email",
    "X-User-Name": "name",
    "X-Tenant-Id": "tenant_id",
    "X-Actor-Type": "actor_type",
    "X-Client-Id": "client_id",
    "X-Client-Name": "client_name",
    "X-User-Role": "role",
}


def header_value(value: str) -> str:
    """Header-safe text: printable ASCII as is, anything else percent-encoded (UTF-8)."""
    if value.isascii() and value.isprintable():
        return value
    return quote(value, safe=" !#$&'()*+,/:;=?@[]~")


def identity_headers(identity: Identity) -> dict[str, str]:
    """What nginx copies onto the upstream request (``auth_request_set``); absent = unknown."""
    headers: dict[str, str] = {}
    for header, attribute in IDENTITY_HEADERS.items():
        value = getattr(identity, attribute)
        if value:
            headers[header] = header_value(str(value))
    return headers


def is_preflight(original_method: str | None) -> bool:
    """A CORS preflight carries no credential (the gateway answers those itself anyway)."""
    return (original_method or "").upper() == "OPTIONS"


class VerifyResource:
    """``/verify`` for nginx ``auth_request``: 200 + identity headers, 401 + WWW-Authenticate,
    503 only when keys are truly unavailable. No database access: keys are in memory.

    Every request it is asked about needs a credential: the gateway sends only protected paths
    here (public ones never go through ``auth_request``), and the path it names
    (``X-Original-URI``) is not consulted, so no spelling of a path (``/health/../api``) can
    turn a check into a pass. A preflight passes with no identity headers, which the gateway
    never caches.

    A 200 has an empty body: nginx discards an ``auth_request`` answer's body without reading
    it, so any body makes it close the upstream connection and open a new one per request."""

    def __init__(self, authenticator: Authenticator, *, require_tenant: bool = False) -> None:
        self.authenticator = authenticator
        self.require_tenant = require_tenant

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        if is_preflight(req.get_header("X-Original-Method")):
            resp.set_header("Cache-Control", "no-store")
            resp.status = falcon.HTTP_200
            return
        identity = await self.authenticator.authenticate(
            bearer_token(req.get_header("Authorization"))
        )
        if identity.is_service:
            # Service credentials are for calls between services, never through the gateway.
            raise Unauthorized(
                "Service credentials are not accepted on this endpoint", error="invalid_token"
            )
        if self.require_tenant:
            require_claimed_tenant(identity)
        req.context.identity = identity  # for the access line
        resp.set_headers(identity_headers(identity))
        resp.set_header("Cache-Control", "no-store")
        resp.status = falcon.HTTP_200

    # nginx's auth_request subrequest keeps the original method; the answer does not depend on it.
    on_head = on_post = on_put = on_patch = on_delete = on_get


class IntrospectRequest(Schema):
    class Meta:
        unknown = RAISE

    token = fields.String(required=True, validate=validate.Length(min=1, max=MAX_TOKEN_BYTES))


class IdentitySchema(Schema):
    sub = fields.String()
    email = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    role = fields.String()
    tenant_id = fields.String()
    actor_type = fields.String()
    client_id = fields.String(allow_none=True)
    client_name = fields.String(allow_none=True)
    organization_ids = fields.List(fields.String())
    api_key_id = fields.String(
        allow_none=True, metadata={"description": "set for `tf_` API keys: the key's id"}
    )
    tenant_claimed = fields.Boolean(
        metadata={"description": "false: the credential named no tenant (development default)"}
    )


class IntrospectResponse(Schema):
    active = fields.Boolean(required=True)
    identity = fields.Nested(IdentitySchema, allow_none=True)
    error = fields.String(allow_none=True)
    expires_in = fields.Float(metadata={"description": "seconds the caller may cache this answer"})


class IntrospectResource:
    """``POST /introspect`` (service credential required): any credential → an identity.

    Refusals are answers (200, ``active: false``), not errors, so callers can cache them; an
    unreachable SSO is a 503 and is never cached. With ``require_tenant`` (production) a
    credential that names no tenant is refused like any other bad credential."""

    def __init__(
        self,
        authenticator: Authenticator,
        checker: SsoCredentialChecker,
        max_cache: float,
        now: Callable[[], float] = time.time,
        *,
        require_tenant: bool = False,
    ) -> None:
        self.authenticator = authenticator
        self.checker = checker
        self.max_cache = max_cache
        self.now = now
        self.require_tenant = require_tenant
        self.request_schema = IntrospectRequest()

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        token = self.request_schema.load(await req.get_media())["token"]
        try:
            identity = await self.authenticator.authenticate(token)
        except Unauthorized as refused:
            resp.media = self._answer(None, refused.message, self._cache_for(token, None))
            return
        if identity.is_service:
            resp.media = self._answer(None, "Service credentials are not introspected", 0.0)
            return
        if self.require_tenant and not identity.tenant_claimed:
            resp.media = self._answer(None, NO_TENANT_CLAIM, self._cache_for(token, identity))
            return
        resp.media = self._answer(identity, None, self._cache_for(token, identity))

    def _cache_for(self, token: str, identity: Identity | None) -> float:
        if credential_kind(token) is CredentialKind.JWT:
            exp = identity.claims.get("exp") if identity is not None else None
            left = float(exp) - self.now() if isinstance(exp, int | float) else self.max_cache
            return max(0.0, min(self.max_cache, left))
        return min(self.max_cache, self.checker.remaining(token))

    @staticmethod
    def _answer(identity: Identity | None, error: str | None, expires_in: float) -> dict[str, Any]:
        return {
            "active": identity is not None,
            "identity": identity_to_dict(identity) if identity is not None else None,
            "error": error,
            "expires_in": round(expires_in, 3),
        }


class JwksRelayResource:
    """``GET /jwks``: the SSO's key set as this verifier holds it (services may point
    ``JWKS_URL`` here); served from memory or the persisted snapshot while the SSO is down."""

    def __init__(self, jwks: JWKSCache) -> None:
        self.jwks = jwks

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = await self.jwks.current_document()
        resp.set_header("Cache-Control", "public, max-age=300")


class DevJwksResource:
    """``GET /dev/jwks``: the local dev issuer's public key (only with ``DEV_ISSUER=true``)."""

    def __init__(self, issuer: DevIssuer) -> None:
        self.document = issuer.jwks()

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = self.document
