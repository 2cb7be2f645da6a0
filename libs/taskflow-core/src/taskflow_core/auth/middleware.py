"""Edge authentication: every non-public route needs ``Authorization: Bearer <credential>``,
verified here; the identity goes on ``req.context.identity``. No identity header a client sends
(``X-User-Id`` and friends) is ever read; the one exception is ``X-Tenant-ID`` under
``DEV_MODE`` (refused in production), which picks the dev user's tenant as the old API did."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

import falcon.asgi

from ..errors import Forbidden, Unauthorized
from ..routing import Route
from .identity import Identity, require_claimed_tenant

# Served by build_app itself (health, docs, spec): always public.
PUBLIC_PREFIXES = ("/health", "/docs", "/redoc")
PUBLIC_PATHS = frozenset({"/", "/openapi.json"})


class Authenticates(Protocol):
    async def authenticate(self, token: str) -> Identity: ...


def bearer_token(header: str | None) -> str:
    """The credential of an ``Authorization: Bearer <x>`` header; 401 when absent or not Bearer."""
    if not header:
        raise Unauthorized("Not authenticated")
    scheme, _, credential = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized("Not authenticated", error="invalid_request")
    return credential.strip()


def is_always_public(path: str) -> bool:
    return path in PUBLIC_PATHS or any(
        path == prefix or path.startswith(prefix + "/") for prefix in PUBLIC_PREFIXES
    )


class RouteAccess:
    """Which (path template, method) pairs are public and which routes are internal."""

    def __init__(self, routes: list[Route]) -> None:
        self.public: set[tuple[str, str]] = set()
        self.public_routes: set[str] = set()  # every operation public: any method passes
        self.internal: set[str] = set()
        for route in routes:
            if route.internal:
                self.internal.add(route.path)
                continue
            if route.operations and route.public:
                self.public_routes.add(route.path)
            for op in route.operations:
                if op.public:
                    self.public.add((route.path, op.method.upper()))

    def is_public(self, template: str | None, method: str, path: str) -> bool:
        if is_always_public(path):
            return True
        if template is None:
            return False
        return template in self.public_routes or (template, method) in self.public

    def is_internal(self, template: str | None) -> bool:
        return template is not None and template in self.internal


class AuthMiddleware:
    """Installed by ``build_app(..., authenticator=...)`` with the app's route table.

    - OPTIONS (CORS preflight) and public operations pass without a credential;
    - internal routes (``Route.internal``) accept only service credentials addressed to this
      service (a user credential → 403);
    - every other route refuses service credentials (401): they are not user sessions;
    - with ``require_tenant`` (production), a credential that names no tenant is a 401 rather
      than a caller of the shared default tenant."""

    def __init__(
        self, authenticator: Authenticates, routes: list[Route], *, require_tenant: bool = False
    ) -> None:
        self.authenticator = authenticator
        self.access = RouteAccess(routes)
        self.require_tenant = require_tenant

    async def process_resource(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: Any,
        params: dict[str, Any],
    ) -> None:
        if req.method == "OPTIONS" or resource is None:  # preflight, or a 404 to come
            return
        template = req.uri_template
        if self.access.is_public(template, req.method, req.path):
            return
        token = bearer_token(req.get_header("Authorization"))
        identity = await self.authenticator.authenticate(token)
        if self.require_tenant:
            require_claimed_tenant(identity)
        if self.access.is_internal(template):
            if not identity.is_service:
                raise Forbidden("This endpoint accepts service credentials only")
        elif identity.is_service:
            raise Unauthorized(
                "Service credentials are not accepted on this endpoint", error="invalid_token"
            )
        dev = getattr(self.authenticator, "dev", None)
        tenant = req.get_header("X-Tenant-ID")
        if dev is not None and identity is dev and tenant and tenant.strip():
            # DEV_MODE only, as in the old API: the fixed dev user may pick its tenant.
            identity = replace(identity, tenant_id=tenant.strip())
        req.context.identity = identity
