"""Service credentials: short-lived JWTs one service sends another (audience = the target).

They are HS256, signed with a key derived from ``SERVICE_SECRET``, and marked with the header
``kid: "taskflow-service"`` so the authenticator sends them to :class:`ServiceTokenVerifier`.
That verifier is separate from the user-token path, which keeps refusing every HS* token.

Without ``SERVICE_SECRET`` each process uses a random secret of its own: enough for
``taskflow dev`` and ``taskflow serve all`` (all services in one process), but a split
deployment (one service per process or host) MUST set the same ``SERVICE_SECRET`` everywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
import structlog
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from joserfc.jwt import JWTClaimsRegistry

from ..config import Settings
from ..errors import Unauthorized
from .identity import Identity

log = structlog.get_logger("taskflow.auth.service")

SERVICE_KID = "taskflow-service"
SERVICE_ISSUER = "taskflow-service"
SERVICE_ALGORITHM = "HS256"
SERVICE_TOKEN_LIFETIME = 60
_RENEW_BEFORE_EXPIRY = 15
_LEEWAY = 30  # clock skew between hosts

# One random secret per process when SERVICE_SECRET is unset (see the module docstring).
_PROCESS_SECRET = secrets.token_urlsafe(32)
_warned_fallback = False

RequestHook = Callable[[httpx.Request], Awaitable[None]]


def service_key(settings: Settings) -> OctKey:
    """The HMAC key for service credentials, derived from ``SERVICE_SECRET`` (or the fallback)."""
    global _warned_fallback
    secret = settings.service_secret
    if not secret:
        secret = _PROCESS_SECRET
        if not _warned_fallback:
            _warned_fallback = True
            log.warning(
                "service_secret_unset",
                hint="using a per-process secret; split deployments must set SERVICE_SECRET",
            )
    # Derived, so the raw setting is never used as a key and always has 256 bits.
    material = hmac.new(b"taskflow-service-credential", secret.encode(), hashlib.sha256).digest()
    return OctKey.import_key(material, {"kid": SERVICE_KID, "alg": SERVICE_ALGORITHM})


def is_service_token_header(header: dict[str, object]) -> bool:
    return header.get("kid") == SERVICE_KID


class ServiceCredentials:
    """Mints the credentials ``caller`` sends; one cached token per audience until near expiry."""

    def __init__(
        self, settings: Settings, caller: str, *, now: Callable[[], float] = time.time
    ) -> None:
        self.key = service_key(settings)
        self.caller = caller
        self.now = now
        self._cache: dict[str, tuple[str, float]] = {}

    def token_for(self, audience: str) -> str:
        """A bearer token ``audience`` accepts as coming from ``caller``."""
        now = self.now()
        cached = self._cache.get(audience)
        if cached is not None and cached[1] - _RENEW_BEFORE_EXPIRY > now:
            return cached[0]
        issued = int(now)
        expires = issued + SERVICE_TOKEN_LIFETIME
        token = jwt.encode(
            {"alg": SERVICE_ALGORITHM, "kid": SERVICE_KID},
            {
                "iss": SERVICE_ISSUER,
                "sub": f"service:{self.caller}",
                "aud": audience,
                "iat": issued,
                "exp": expires,
                "jti": uuid.uuid4().hex,
            },
            self.key,
            algorithms=[SERVICE_ALGORITHM],
        )
        self._cache[audience] = (token, float(expires))
        return token


def service_credentials_hook(
    settings: Settings, caller: str, audience: str, *, now: Callable[[], float] = time.time
) -> RequestHook:
    """An httpx request hook (the ``credentials=`` of ``create_http_client``) that adds
    ``Authorization: Bearer <service credential for audience>`` unless the request has one."""
    credentials = ServiceCredentials(settings, caller, now=now)

    async def add_credentials(request: httpx.Request) -> None:
        if "Authorization" not in request.headers:
            request.headers["Authorization"] = f"Bearer {credentials.token_for(audience)}"

    return add_credentials


class ServiceTokenVerifier:
    """Accepts service credentials addressed to ``service`` (and no other audience)."""

    def __init__(self, settings: Settings, service: str, *, now: Callable[[], float]) -> None:
        self.key = service_key(settings)
        self.service = service
        self.claims = JWTClaimsRegistry(
            now=lambda: int(now()),
            leeway=_LEEWAY,
            iss={"essential": True, "value": SERVICE_ISSUER},
            aud={"essential": True, "value": service},
            sub={"essential": True},
            exp={"essential": True},
        )

    def verify(self, token: str) -> Identity:
        try:
            decoded = jwt.decode(token, self.key, algorithms=[SERVICE_ALGORITHM])
            self.claims.validate(decoded.claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise Unauthorized("Invalid service credential", error="invalid_token") from exc
        claims = decoded.claims
        caller = str(claims["sub"]).removeprefix("service:")
        return Identity(
            sub=str(claims["sub"]),
            name=caller,
            role="service",
            actor_type="service",
            client_id=caller,
            client_name=caller,
            claims=dict(claims),
        )
