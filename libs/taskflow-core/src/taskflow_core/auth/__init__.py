"""Token verification shared by every service (JWKS cache, verifier, identity, middleware).

Typical wiring in a service's ``create_app``::

    http = create_http_client(timeout=settings.http_timeout)
    authenticator = create_authenticator(
        settings, http, service="tasks", snapshots=KeySetSnapshotStore(pool, "tasks")
    )
    lifecycle = Lifecycle(pool, on_startup=[authenticator.start], ...)
    app = build_app(..., lifecycle=lifecycle, authenticator=authenticator)

(``snapshots``: the service's ``jwks_snapshot`` table, so a restart while the SSO is down starts
from the last good key set and discovery document; ``start`` loads them before serving.)

and, to call another service: ``create_http_client(credentials=service_credentials_hook(
settings, caller="tasks", audience="audit"))``.
"""

from .authenticator import Authenticator, CredentialKind, create_authenticator, credential_kind
from .identity import Identity, identity_from_claims, tenant_from_claims
from .middleware import AuthMiddleware, bearer_token
from .service_tokens import ServiceCredentials, service_credentials_hook

__all__ = [
    "AuthMiddleware",
    "Authenticator",
    "CredentialKind",
    "Identity",
    "ServiceCredentials",
    "bearer_token",
    "create_authenticator",
    "credential_kind",
    "identity_from_claims",
    "service_credentials_hook",
    "tenant_from_claims",
]
