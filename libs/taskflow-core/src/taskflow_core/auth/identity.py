"""Who is calling: the identity every service derives from a verified credential."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import DEFAULT_TENANT
from ..errors import Unauthorized

ActorType = Literal["human", "agent", "service"]

# Production refuses a credential that names no tenant (it would share the default one).
NO_TENANT_CLAIM = (
    "Token names no tenant: a tenant_id, organization_id or organization_ids claim is required"
)


@dataclass(frozen=True)
class Identity:
    """Who is calling. ``tenant_claimed`` is False when the credential named no tenant and
    ``tenant_id`` is the development default; ``api_key_id`` is set for ``tf_`` API keys only
    (their agent is found by it, while an agent JWT's is found by tenant, sub and client)."""

    sub: str
    email: str | None = None
    name: str | None = None
    role: str = "user"
    tenant_id: str = DEFAULT_TENANT
    actor_type: ActorType = "human"
    client_id: str | None = None
    client_name: str | None = None
    organization_ids: tuple[str, ...] = ()
    api_key_id: str | None = None
    tenant_claimed: bool = True
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_service(self) -> bool:
        return self.actor_type == "service"


def claimed_tenant(claims: dict[str, Any]) -> str | None:
    """``tenant_id`` → ``organization_id`` → ``organization_ids[0]``, or ``None``."""
    for key in ("tenant_id", "organization_id"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    orgs = claims.get("organization_ids")
    if isinstance(orgs, list) and orgs and isinstance(orgs[0], str) and orgs[0].strip():
        return orgs[0].strip()
    return None


def tenant_from_claims(claims: dict[str, Any]) -> str:
    """The claimed tenant (:func:`claimed_tenant`), else the default tenant."""
    return claimed_tenant(claims) or DEFAULT_TENANT


def require_claimed_tenant(identity: Identity) -> Identity:
    """``identity``, unless its credential named no tenant: 401 (what production edges do)."""
    if not identity.tenant_claimed and not identity.is_service:
        raise Unauthorized(NO_TENANT_CLAIM, error="invalid_token")
    return identity


AGENT_MARKERS = frozenset({"agent", "ai_agent", "service_agent"})


def actor_type_from_claims(claims: dict[str, Any]) -> ActorType:
    """``agent`` when the token says so (``actor_type`` or ``token_type``), else ``human``.

    Service credentials never come through here: they have their own verifier."""
    for key in ("actor_type", "token_type"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip().lower() in AGENT_MARKERS:
            return "agent"
    return "human"


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def identity_from_claims(claims: dict[str, Any]) -> Identity:
    """The identity a verified set of claims (JWT payload or userinfo answer) describes.

    Raises ``ValueError`` when ``sub`` is missing: a credential without a subject names nobody."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise ValueError("missing 'sub' claim")
    orgs = claims.get("organization_ids")
    organization_ids = (
        tuple(o for o in orgs if isinstance(o, str) and o) if isinstance(orgs, list) else ()
    )
    role = claims.get("role")
    tenant = claimed_tenant(claims)
    return Identity(
        sub=sub,
        email=_optional_str(claims.get("email")),
        name=_optional_str(claims.get("name")),
        role=role if isinstance(role, str) and role else "user",
        tenant_id=tenant or DEFAULT_TENANT,
        actor_type=actor_type_from_claims(claims),
        client_id=_optional_str(claims.get("client_id")) or _optional_str(claims.get("azp")),
        client_name=_optional_str(claims.get("client_name")),
        organization_ids=organization_ids,
        tenant_claimed=tenant is not None,
        claims=dict(claims),
    )


def identity_to_dict(identity: Identity) -> dict[str, Any]:
    """The wire form of an identity (introspection answers); ``claims`` stay in-process."""
    return {
        "sub": identity.sub,
        "email": identity.email,
        "name": identity.name,
        "role": identity.role,
        "tenant_id": identity.tenant_id,
        "actor_type": identity.actor_type,
        "client_id": identity.client_id,
        "client_name": identity.client_name,
        "organization_ids": list(identity.organization_ids),
        "api_key_id": identity.api_key_id,
        "tenant_claimed": identity.tenant_claimed,
    }


def identity_from_dict(data: dict[str, Any]) -> Identity:
    """Inverse of :func:`identity_to_dict` (``service`` is never accepted from the wire); a
    tenant is taken as claimed only when the answer says so."""
    actor = data.get("actor_type")
    tenant = _optional_str(data.get("tenant_id"))
    return Identity(
        sub=str(data["sub"]),
        email=_optional_str(data.get("email")),
        name=_optional_str(data.get("name")),
        role=_optional_str(data.get("role")) or "user",
        tenant_id=tenant or DEFAULT_TENANT,
        actor_type="agent" if actor == "agent" else "human",
        client_id=_optional_str(data.get("client_id")),
        client_name=_optional_str(data.get("client_name")),
        organization_ids=tuple(
            o for o in data.get("organization_ids") or () if isinstance(o, str) and o
        ),
        api_key_id=_optional_str(data.get("api_key_id")),
        tenant_claimed=tenant is not None and data.get("tenant_claimed") is True,
        claims=dict(data),
    )
