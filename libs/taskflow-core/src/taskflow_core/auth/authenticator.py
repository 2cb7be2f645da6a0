"""One entry point per service: ``create_authenticator(settings, http, service=...)`` returns an
:class:`Authenticator` whose ``authenticate(token)`` turns any bearer credential into an
:class:`Identity` (or raises 401/503 in the JSON error shape), and whose ``start()`` (a
``Lifecycle`` start-up hook) loads the last good key set before the service answers."""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import Enum
from typing import Any

import httpx

from ..config import Settings
from ..errors import Unauthorized
from .discovery import ProviderConfiguration
from .identity import Identity
from .introspection import Introspector, RemoteIntrospector
from .jwks import CachePolicy, JWKSCache
from .service_tokens import ServiceCredentials, ServiceTokenVerifier, is_service_token_header
from .snapshot import KeySetSnapshotStore, LastGoodKeySet
from .verifier import JWTVerifier, invalid_jwt, read_header

API_KEY_PREFIX = "tf_"
# RFC 6750 §2.1 b64token: what any bearer credential (JWT, API key, opaque token) is made of.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# A compact JWS starts with its base64url header, and a JSON object's encoding starts so.
_JWT_START = "eyJ"
MALFORMED_TOKEN = (
    "Invalid token: malformed (a bearer token has only letters, digits and -._~+/=;"
    " send the token itself, without quotes or angle brackets)"
)


class CredentialKind(Enum):
    JWT = "jwt"
    API_KEY = "api_key"
    OPAQUE = "opaque"


def credential_kind(token: str) -> CredentialKind:
    """``tf_…`` → agent API key; three dot-separated parts → JWT; anything else → opaque."""
    if token.startswith(API_KEY_PREFIX):
        return CredentialKind.API_KEY
    if token.count(".") == 2:
        return CredentialKind.JWT
    return CredentialKind.OPAQUE


def malformed_credential(token: str) -> str | None:
    """Why ``token`` cannot be any credential at all (``None``: it may be one; its verifier
    decides). Such a token is refused here, without asking the SSO about it."""
    if not _B64TOKEN.fullmatch(token):
        return MALFORMED_TOKEN
    segments = token.count(".") + 1
    if token.startswith(_JWT_START) and segments != 3:
        # A JWT cut off, or run into something else, while it was copied.
        return invalid_jwt(
            f"malformed token (3 dot-separated segments expected, {segments} given)"
        ).message
    return None


def dev_identity(settings: Settings) -> Identity:
    """The fixed identity of ``DEV_MODE`` (as in the old API: role admin, default tenant)."""
    return Identity(
        sub=settings.dev_user_id,
        email=settings.dev_user_email,
        name=settings.dev_user_name,
        role="admin",
    )


class Authenticator:
    """Verifies bearer credentials for ``service``.

    - JWT with the service-credential header → :class:`ServiceTokenVerifier` (audience must be
      ``service``); identity with ``actor_type == "service"``;
    - other JWTs → :class:`JWTVerifier` (JWKS, RS256/ES256/EdDSA only);
    - ``tf_`` API keys and opaque tokens → the introspector (the auth-verifier).
    Whether a route accepts a service identity is the middleware's decision, not this one's."""

    def __init__(
        self,
        *,
        service: str,
        jwks: JWKSCache,
        users: JWTVerifier,
        services: ServiceTokenVerifier,
        introspector: Introspector,
        credentials: ServiceCredentials,
        dev: Identity | None = None,
        provider: ProviderConfiguration | None = None,
        last_good: LastGoodKeySet | None = None,
        fetch_at_start: bool = True,
    ) -> None:
        self.service = service
        self.jwks = jwks
        self.users = users
        self.services = services
        self.introspector = introspector
        self.credentials = credentials
        self.dev = dev
        self.provider = provider
        self.last_good = last_good
        self.fetch_at_start = fetch_at_start

    async def start(self) -> None:
        """Start-up hook (``Lifecycle(on_startup=[authenticator.start])``, after the pool
        opens): the last good key set and discovery document first, so an SSO outage now does
        not stop verification, then a first fetch of both in the background."""
        if self.dev is not None:
            return
        if self.last_good is not None:
            await self.last_good.load()
        if self.provider is not None and (
            not self.provider.discovery_needed or self.provider.metadata is not None
        ):
            self.provider.log_configuration()  # otherwise the first discovery logs it
        if self.fetch_at_start:
            self.jwks.warm_up()

    async def authenticate(self, token: str) -> Identity:
        """The identity behind a bearer credential (the part after ``Bearer ``).

        Raises ``Unauthorized`` (401 + ``WWW-Authenticate``) for a bad credential and
        ``ServiceUnavailable`` (503) when no signing keys / no verifier can be reached."""
        token = token.strip()
        if not token:
            raise Unauthorized("Not authenticated")
        if self.dev is None and (known := self.users.verified_identity(token)) is not None:
            return known  # verified moments ago as a user token: header and shape included
        if self.dev is None and (malformed := malformed_credential(token)) is not None:
            raise Unauthorized(malformed, error="invalid_token")
        kind = credential_kind(token)
        if kind is CredentialKind.JWT:
            header = read_header(token) if self.dev is None else _header_or_empty(token)
            if is_service_token_header(header):
                return self.services.verify(token)
            if self.dev is not None:
                return self.dev
            return await self.users.verify(token, header)
        if self.dev is not None:
            return self.dev
        return await self.introspector.introspect(token)

    async def readiness(self) -> dict[str, Any]:
        """Key cache facts for ``/health/ready`` (never fetches)."""
        age = self.jwks.age
        return {
            "jwks": {
                "keys": len(self.jwks.state.kids),
                "age_s": None if age is None else round(age, 1),
                "dev_mode": self.dev is not None,
                **(self.provider.facts() if self.provider is not None else {}),
            }
        }

    async def close(self) -> None:
        await self.jwks.close()


def _header_or_empty(token: str) -> dict[str, Any]:
    try:
        return read_header(token)
    except Unauthorized:
        return {}


def create_authenticator(
    settings: Settings,
    http_client: httpx.AsyncClient,
    service: str = "tasks",
    *,
    introspector: Introspector | None = None,
    snapshots: KeySetSnapshotStore | None = None,
    now: Callable[[], float] | None = None,
) -> Authenticator:
    """The authenticator ``service`` installs with ``build_app(..., authenticator=...)``; its
    ``start`` goes in the service's ``Lifecycle(on_startup=...)``.

    ``http_client`` fetches the discovery document and the JWKS and calls the auth-verifier's
    ``/introspect`` (it adds its own service credential to those calls). ``snapshots`` (the
    service's ``jwks_snapshot`` table) keeps the last good key set across restarts. The
    auth-verifier passes its own ``introspector`` (it checks API keys at the SSO itself)."""
    clock = now or (lambda: settings.clock().timestamp())
    policy = CachePolicy(
        ttl=settings.jwks_cache_ttl,
        stale_ttl=settings.jwks_stale_ttl,
        min_refresh_interval=settings.jwks_min_refresh_interval,
    )
    provider = ProviderConfiguration.from_settings(settings, http_client)
    jwks = JWKSCache(settings.effective_jwks_url, http_client, policy, now=clock, location=provider)
    last_good = None
    if snapshots is not None:
        last_good = LastGoodKeySet(snapshots, jwks, provider)
        jwks.on_fetched = last_good.save
    credentials = ServiceCredentials(settings, service, now=clock)
    return Authenticator(
        service=service,
        jwks=jwks,
        users=JWTVerifier(
            jwks, issuer=provider.expected_issuer, audience=settings.jwt_audience, now=clock
        ),
        services=ServiceTokenVerifier(settings, service, now=clock),
        introspector=introspector
        or RemoteIntrospector(
            http_client,
            settings.auth_verifier_url,
            credentials,
            settings.introspection_cache_ttl,
            now=clock,
        ),
        credentials=credentials,
        dev=dev_identity(settings) if settings.dev_mode else None,
        provider=provider,
        last_good=last_good,
        # The dev issuer's keys are served by the auth-verifier: under `taskflow dev`, this very
        # process, which does not listen yet at start-up. The first request fetches them.
        fetch_at_start=not settings.dev_issuer,
    )
