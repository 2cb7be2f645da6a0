"""Verification of user tokens (JWTs issued by the SSO) against the JWKS cache."""

from __future__ import annotations

import base64
import binascii
import warnings
from collections.abc import Callable
from typing import Any

import orjson
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwt import ClaimsOption, JWTClaimsRegistry

from ..errors import ServiceUnavailable, Unauthorized
from .cache import TTLCache, credential_hash
from .identity import Identity, identity_from_claims
from .jwks import JWKSCache

# Better Auth signs EdDSA (Ed25519) by default, the TaskFlow SSO signs RS256. HS* is refused on
# this path: a symmetric algorithm would let anyone holding the *public* key forge tokens.
USER_TOKEN_ALGORITHMS = frozenset({"RS256", "ES256", "EdDSA"})
LEEWAY_SECONDS = 60
# RFC 9864 prefers "Ed25519" as the alg name, but Better Auth publishes and signs "EdDSA".
warnings.filterwarnings("ignore", message="EdDSA is deprecated", module="joserfc")
MAX_TOKEN_BYTES = 16_384
# A token seen again within this many seconds (and before its exp) is not re-verified: the
# same user sends the same token on every request. A key withdrawn from the JWKS is a matter of
# the key cache's TTL anyway, so this adds no meaningful window.
VERIFIED_TOKEN_TTL = 30.0


def invalid_jwt(reason: str) -> Unauthorized:
    return Unauthorized(f"Invalid JWT: {reason}", error="invalid_token")


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def read_header(token: str) -> dict[str, Any]:
    """The unverified JOSE header of a compact JWT (to pick the key); raises ``Unauthorized``."""
    if len(token) > MAX_TOKEN_BYTES:
        raise invalid_jwt("token too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise invalid_jwt("not a compact JWS")
    try:
        header = orjson.loads(_b64decode(parts[0]))
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise invalid_jwt("malformed header") from exc
    if not isinstance(header, dict):
        raise invalid_jwt("malformed header")
    return header


# The issuer every token must carry: a fixed value (or None: unchecked), or asked at each
# verification (OIDC discovery; it raises ServiceUnavailable while none is known but required).
ExpectedIssuer = str | None | Callable[[], str | None]


def claims_registry(
    now: Callable[[], int], issuer: str | None, audience: str | None
) -> JWTClaimsRegistry:
    """``exp`` and ``sub`` required; ``nbf``/``iat`` checked; ``iss``/``aud`` when known."""
    options: dict[str, ClaimsOption] = {"exp": {"essential": True}, "sub": {"essential": True}}
    if issuer:
        options["iss"] = {"essential": True, "value": issuer}
    if audience:
        options["aud"] = {"essential": True, "value": audience}
    return JWTClaimsRegistry(now=now, leeway=LEEWAY_SECONDS, **options)


class JWTVerifier:
    """Checks a user JWT: allow-listed algorithm, key by ``kid`` from the JWKS cache, signature,
    time claims with 60 s leeway, issuer (fixed or discovered) and audience when configured."""

    def __init__(
        self,
        keys: JWKSCache,
        *,
        issuer: ExpectedIssuer = None,
        audience: str | None = None,
        now: Callable[[], float],
        verified_ttl: float = VERIFIED_TOKEN_TTL,
    ) -> None:
        self.keys = keys
        self.now = now
        self.issuer = issuer
        self.audience = audience
        self._registries: dict[str | None, JWTClaimsRegistry] = {}
        self.verified_ttl = verified_ttl  # 0 turns the verified-token cache off
        self.verified: TTLCache[Identity] = TTLCache(now=now)

    def verified_identity(self, token: str) -> Identity | None:
        """The identity of ``token`` if it was verified within ``verified_ttl`` (and has not
        expired since), without parsing it again: the same user sends the same token on every
        request, so this is the hot path of authentication."""
        if self.verified_ttl <= 0:
            return None
        hit = self.verified.get(credential_hash(token))
        return None if hit is None else hit.value

    async def verify(self, token: str, header: dict[str, Any] | None = None) -> Identity:
        """``header``: the token's already-parsed JOSE header, when the caller has it."""
        digest = credential_hash(token) if self.verified_ttl > 0 else ""
        if digest:
            hit = self.verified.get(digest)
            if hit is not None:
                return hit.value
        identity = await self._verify(token, header)
        if digest:
            exp = identity.claims.get("exp")
            left = float(exp) - self.now() if isinstance(exp, int | float) else 0.0
            self.verified.put(digest, identity, min(self.verified_ttl, left))
        return identity

    async def _verify(self, token: str, header: dict[str, Any] | None) -> Identity:
        header = read_header(token) if header is None else header
        alg = header.get("alg")
        if alg not in USER_TOKEN_ALGORITHMS:
            raise invalid_jwt(f"algorithm {alg!r} is not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise invalid_jwt("missing 'kid' header")
        key = await self.keys.get(kid)
        key_alg = key.get("alg") if hasattr(key, "get") else None
        if key_alg and key_alg != alg:
            raise invalid_jwt("algorithm does not match the signing key")
        return self.check(token, key, str(alg), await self._expected_issuer())

    async def _expected_issuer(self) -> str | None:
        if not callable(self.issuer):
            return self.issuer
        try:
            return self.issuer()
        except ServiceUnavailable:
            # The keys may be fresh while the issuer is not known yet: ask the SSO (at most
            # once per minimum refresh interval), then decide.
            await self.keys.refresh_if_due()
            return self.issuer()

    def claims_for(self, issuer: str | None) -> JWTClaimsRegistry:
        registry = self._registries.get(issuer)
        if registry is None:
            registry = claims_registry(lambda: int(self.now()), issuer, self.audience)
            self._registries[issuer] = registry
        return registry

    def check(self, token: str, key: Any, alg: str, issuer: str | None) -> Identity:
        """Signature and claims with a known key and the issuer to expect (the part
        ``bench/verify_bench.py`` measures)."""
        try:
            decoded = jwt.decode(token, key, algorithms=[alg])
            self.claims_for(issuer).validate(decoded.claims)
        except ExpiredTokenError as exc:
            raise invalid_jwt("token has expired") from exc
        except JoseError as exc:
            raise invalid_jwt(exc.description or exc.error.replace("_", " ")) from exc
        except (ValueError, TypeError) as exc:
            raise invalid_jwt("malformed token") from exc
        try:
            return identity_from_claims(decoded.claims)
        except ValueError as exc:
            raise invalid_jwt(str(exc)) from exc
