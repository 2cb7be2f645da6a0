"""`create_app(settings)`: builds the TaskFlow Auth Verifier service from its configuration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from taskflow_core.auth.authenticator import create_authenticator
from taskflow_core.auth.dev_issuer import DevIssuer
from taskflow_core.config import ConfigError, Settings
from taskflow_core.db import create_pool
from taskflow_core.http import create_http_client
from taskflow_core.logging import configure_logging
from taskflow_core.routing import Operation, Route
from taskflow_core.service import Lifecycle, ServiceApp, build_app

from . import SERVICE
from .keystore import JwksSnapshotStore
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

log = structlog.get_logger("taskflow.auth_verifier")
TAG = "auth"
VERIFY_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
VERIFY_DESCRIPTION = (
    "nginx `auth_request` target. 200 (empty body) with "
    + ", ".join(f"`{h}`" for h in IDENTITY_HEADERS)
    + " for a good credential; 401 with `WWW-Authenticate` otherwise (in production also for a"
    " credential that names no tenant); 503 only when no signing keys are available. Every"
    " request needs a credential whatever path `X-Original-URI` names (the gateway sends only"
    " protected paths here); a CORS preflight (`X-Original-Method: OPTIONS`) passes without"
    " identity headers."
)


def create_app(settings: Settings | None = None) -> ServiceApp:
    settings = settings or Settings.from_env()
    settings.validate()
    configure_logging(settings)
    pool = create_pool(settings, f"taskflow-{SERVICE}")
    store = JwksSnapshotStore(pool)
    http = create_http_client(timeout=settings.http_timeout)
    jwks_url = settings.effective_jwks_url

    def now() -> float:
        return settings.clock().timestamp()

    async def persist_keys(document: dict[str, Any], fetched_at: float) -> None:
        await store.save(jwks_url, document, datetime.fromtimestamp(fetched_at, UTC))

    checker = SsoCredentialChecker(
        http,
        settings.sso_url,
        api_key_ttl=settings.api_key_cache_ttl,
        opaque_ttl=settings.introspection_cache_ttl,
        timeout=settings.http_timeout,
        now=now,
    )
    authenticator = create_authenticator(
        settings, http, SERVICE, introspector=checker, on_keys_fetched=persist_keys, now=now
    )

    async def load_persisted_keys() -> None:
        """Start from the last good key set, so an SSO outage at start does not lock users out."""
        try:
            snapshot = await store.load(jwks_url)
        except Exception as exc:  # the database being down must not stop the verifier
            log.warning("jwks_snapshot_unavailable", error=type(exc).__name__)
            return
        if snapshot is not None and authenticator.jwks.age is None:
            authenticator.jwks.seed(snapshot.key_set, snapshot.fetched_at.timestamp())
            log.info("jwks_snapshot_loaded", fetched_at=snapshot.fetched_at.isoformat())

    async def close() -> None:
        await authenticator.close()
        await http.aclose()

    routes = [
        Route(
            "/verify",
            VerifyResource(authenticator, require_tenant=settings.is_production),
            tuple(
                Operation(
                    method,
                    f"Forward-auth for the gateway ({method})",
                    TAG,
                    public=True,
                    errors=(401, 503),
                    headers=("Authorization", "X-Original-URI", "X-Original-Method"),
                    description=VERIFY_DESCRIPTION,
                )
                # nginx's auth_request subrequest keeps the client's method.
                for method in VERIFY_METHODS
            ),
        ),
        Route(
            "/introspect",
            IntrospectResource(
                authenticator,
                checker,
                settings.introspection_cache_ttl,
                now,
                require_tenant=settings.is_production,
            ),
            (
                Operation(
                    "POST",
                    "Introspect a credential",
                    TAG,
                    request=IntrospectRequest,
                    response=IntrospectResponse,
                    errors=(403, 503),
                ),
            ),
            internal=True,
        ),
        Route(
            "/jwks",
            JwksRelayResource(authenticator.jwks),
            (Operation("GET", "Signing keys of the SSO", TAG, public=True, errors=(503,)),),
        ),
    ]
    if settings.dev_issuer:
        if settings.is_production:
            raise ConfigError("DEV_ISSUER=true is refused when ENV=production")
        issuer = DevIssuer.load_or_create(settings.data_dir)
        routes.append(
            Route(
                "/dev/jwks",
                DevJwksResource(issuer),
                (Operation("GET", "Signing keys of the dev issuer", TAG, public=True),),
            )
        )
    lifecycle = Lifecycle(pool, on_startup=[load_persisted_keys], on_shutdown=[close])
    return build_app(
        service=SERVICE,
        title="TaskFlow Auth Verifier",
        settings=settings,
        routes=routes,
        lifecycle=lifecycle,
        authenticator=authenticator,
    )
