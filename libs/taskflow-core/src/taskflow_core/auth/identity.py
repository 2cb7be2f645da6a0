"""Who is calling: the identity every service derives from a verified credential."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import DEFAULT_TENANT

ActorType = Literal["human", "agent", "service"]


@dataclass(frozen=True)
class Identity:
    sub: str
    email: str | None = None
    name: str | None = None
    role: str = "user"
    tenant_id: str = DEFAULT_TENANT
    actor_type: ActorType = "human"
    client_id: str | None = None
    client_name: str | None = None
    organization_ids: tuple[str, ...] = ()
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_service(self) -> bool:
        return self.actor_type == "service"


def tenant_from_claims(claims: dict[str, Any]) -> str:
    """``tenant_id`` → ``organization_id`` → ``organization_ids[0]`` → the default tenant."""
    for key in ("tenant_id", "organization_id"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    orgs = claims.get("organization_ids")
    if isinstance(orgs, list) and orgs and isinstance(orgs[0], str) and orgs[0].strip():
        return orgs[0].strip()
    return DEFAULT_TENANT
