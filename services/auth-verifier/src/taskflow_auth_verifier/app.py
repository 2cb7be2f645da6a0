"""`create_app(settings)`: builds the TaskFlow Auth Verifier service from its configuration."""

from __future__ import annotations

from taskflow_core.auth.authenticator import create_authenticator
from taskflow_core.auth.dev_issuer import DevIssuer
from taskflow_core.auth.snapshot import KeySetSnapshotStore
from taskflow_core.config import ConfigError, Settings
from taskflow_core.db import create_pool
from taskflow_core.http import create_http_client
from taskflow_core.logging import configure_logging
from taskflow_core.routing import Operation, OperationFamily, Route
from taskflow_core.service import Lifecycle, ServiceApp, build_app

from . import SCHEMA, SERVICE
from .resources import (
    IDENTITY_HEADERS,
    DevJwksResource,
    IntrospectRequest,
    IntrospectResource,
    IntrospectResponse,
    JwksRelayResource,
    VerifyResource,
)
from .sso import SsoCredentialChecker

TAG = "auth"
VERIFY_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
VERIFY_DESCRIPTION = (
    "nginx `auth_request` target. 200 (empty body) with "
    + ", ".join(f"`{h}`" for h in IDENTITY_HEADERS)
    + " for a good credential; 401 with `WWW-Authenticate` otherwise (in production also for a"
    " credential that names no tenant); 503 only when no signing keys are available (or, with"
    " `ENV=production`, no issuer is known yet). Every request needs a credential whatever path"
    " `X-Original-URI` names (the gateway sends only protected paths here); a CORS preflight"
    " (`X-Original-Method: OPTIONS`) passes without identity headers."
)


# The operations. /verify answers every method: nginx's auth_request subrequest keeps the
# client's.
_VERIFY = tuple(
    Operation(
        method,
        f"Forward-auth for the gateway ({method})",
        TAG,
        operation_id=f"forwardAuth{method.capitalize()}",
        public=True,
        errors=(401, 503),
        headers=("Authorization", "X-Original-URI", "X-Original-Method"),
        description=VERIFY_DESCRIPTION,
    )
    for method in VERIFY_METHODS
)
_auth = OperationFamily(TAG, public=True, errors=(503,))
_INTROSPECT = _auth.post(
    "introspectCredential",
    "Introspect a credential",
    request=IntrospectRequest,
    response=IntrospectResponse,
    errors=(403, 503),
    public=False,
)
_JWKS = _auth.get("getSigningKeys", "Signing keys of the SSO")
_DEV_JWKS = _auth.get("getDevIssuerKeys", "Signing keys of the dev issuer", errors=())


def create_app(settings: Settings | None = None) -> ServiceApp:
    settings = settings or Settings.from_env()
    settings.validate()
    configure_logging(settings)
    pool = create_pool(settings, f"taskflow-{SERVICE}")
    http = create_http_client(timeout=settings.http_timeout)

    def now() -> float:
        return settings.clock().timestamp()

    checker = SsoCredentialChecker(
        http,
        settings.sso_url,
        api_key_ttl=settings.api_key_cache_ttl,
        opaque_ttl=settings.introspection_cache_ttl,
        timeout=settings.http_timeout,
        now=now,
    )
    authenticator = create_authenticator(
        settings,
        http,
        SERVICE,
        introspector=checker,
        snapshots=KeySetSnapshotStore(pool, SCHEMA),
        now=now,
    )

    async def close() -> None:
        await authenticator.close()
        await http.aclose()

    verify = VerifyResource(authenticator, require_tenant=settings.is_production)
    introspect = IntrospectResource(
        authenticator,
        checker,
        settings.introspection_cache_ttl,
        now,
        require_tenant=settings.is_production,
    )
    routes = [
        Route("/verify", verify, _VERIFY),
        Route("/introspect", introspect, (_INTROSPECT,), internal=True),
        Route("/jwks", JwksRelayResource(authenticator.jwks), (_JWKS,)),
    ]
    if settings.dev_issuer:
        if settings.is_production:
            raise ConfigError("DEV_ISSUER=true is refused when ENV=production")
        issuer = DevIssuer.load_or_create(settings.data_dir)
        routes.append(Route("/dev/jwks", DevJwksResource(issuer), (_DEV_JWKS,)))
    return build_app(
        service=SERVICE,
        title="TaskFlow Auth Verifier",
        settings=settings,
        routes=routes,
        lifecycle=Lifecycle(pool, on_startup=[authenticator.start], on_shutdown=[close]),
        authenticator=authenticator,
    )
