"""What the test SSO answers about ``tf_`` agent API keys, as Better Auth does.

``POST /api/api-key/verify`` (the test issuer's ``api_keys``) says whose key it is; the key's
``metadata`` is whatever its owner wrote. Better Auth's organization plugin answers
``GET /api/auth/organization/list`` for the key's owner when the request carries the key in
``x-api-key`` and the SSO runs the API-key plugin with ``enableSessionForAPIKeys``: that list
is the owner's membership, which the owner cannot write. Keys registered without
``organizations`` get a 401 there, as from an SSO without API-key sessions."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.issuer import TestIssuer

ORGANIZATION_LIST = "GET /api/auth/organization/list"


class OrganizationList:
    """The organization plugin's ``/organization/list`` for the session an API key opens."""

    def __init__(self) -> None:
        self.by_key: dict[str, list[str]] = {}
        self.calls = 0

    def __call__(self, request: dict[str, Any]) -> tuple[int, Any]:
        self.calls += 1
        headers = {k.lower(): v for k, v in request.get("headers", {}).items()}
        organizations = self.by_key.get(headers.get("x-api-key", ""))
        if organizations is None:
            return 401, {"code": "UNAUTHORIZED", "message": "Unauthorized"}
        return 200, [
            {"id": org, "name": f"Org {org}", "slug": org, "createdAt": "2025-01-01T00:00:00Z"}
            for org in organizations
        ]


def organization_list(issuer: TestIssuer) -> OrganizationList:
    """The issuer's ``/organization/list`` stand-in (installed on first use)."""
    handler = issuer.extra_routes.get(ORGANIZATION_LIST)
    if not isinstance(handler, OrganizationList):
        handler = OrganizationList()
        issuer.extra_routes[ORGANIZATION_LIST] = handler
    return handler


def register_api_key(
    issuer: TestIssuer,
    owner: str,
    *,
    name: str = "claude-agent",
    organizations: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> str:
    """A new ``tf_`` key of ``owner``; ``organizations``: the owner's memberships at the SSO
    (``None``: the SSO cannot tell, as without ``enableSessionForAPIKeys``)."""
    key = f"tf_{uuid.uuid4().hex}"
    issuer.api_keys[key] = {
        "id": f"key-{uuid.uuid4().hex[:10]}",
        "userId": owner,
        "name": name,
        "enabled": True,
        "metadata": metadata,
    }
    if organizations is not None:
        organization_list(issuer).by_key[key] = list(organizations)
    return key
