"""Token verification shared by every service (JWKS cache, verifier, identity, middleware).

Typical wiring in a service's ``create_app``::

    http = create_http_client(timeout=settings.http_timeout)
    authenticator = create_authenticator(settings, http, service="tasks")
    app = build_app(..., authenticator=authenticator)

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
