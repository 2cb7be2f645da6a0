"""OIDC discovery: the SSO's OpenID Provider configuration document says which issuer its tokens
carry and where its key set is. :class:`ProviderConfiguration` combines it with the explicit
settings (which win) and the defaults, and logs where each value came from.

Better Auth serves the document at ``/.well-known/openid-configuration`` when the application
mounts it at the root, and always at ``/api/auth/.well-known/openid-configuration`` (its OIDC
provider plugin, under the auth base path): both are tried, in that order."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import httpx
import structlog
from authlib.oidc.discovery import OpenIDProviderMetadata

from ..config import Settings
from ..errors import ServiceUnavailable
from .jwks import AUTH_UNAVAILABLE

log = structlog.get_logger("taskflow.auth.discovery")
# Configurations already logged by this process (see ProviderConfiguration.log_configuration).
_LOGGED_IN_PROCESS: set[tuple[Any, ...]] = set()

DISCOVERY_PATHS = (
    "/.well-known/openid-configuration",
    "/api/auth/.well-known/openid-configuration",
)
DISCOVERY_FETCH_TIMEOUT = 5.0


class Source(Enum):
    """Where a trusted value came from (said in the logs and on ``/health/ready``)."""

    EXPLICIT = "explicit"  # JWT_ISSUER / JWKS_URL
    DISCOVERED = "discovered"  # the SSO's discovery document, fetched in this run
    PERSISTED = "persisted"  # the document saved with the last good key set (earlier run)
    DEFAULT = "default"  # ${SSO_URL}/api/auth/jwks
    NONE = "none"  # no issuer known: see ProviderConfiguration.expected_issuer
    OFF = "off"  # JWT_ISSUER_CHECK=off


@dataclass(frozen=True)
class Resolved:
    value: str | None
    source: Source


@dataclass(frozen=True)
class ProviderMetadata:
    """The two facts the verifier takes from a validated discovery document."""

    issuer: str
    jwks_uri: str
    document: dict[str, Any]


def provider_metadata(document: Any) -> ProviderMetadata:
    """Validate a discovery document with authlib's OpenID Provider metadata rules (issuer and
    endpoints over https or loopback, required members present); ``ValueError`` names the
    first problem."""
    if not isinstance(document, dict):
        raise ValueError("the discovery document is not a JSON object")
    metadata = OpenIDProviderMetadata(document)
    metadata.validate()
    return ProviderMetadata(str(metadata["issuer"]), str(metadata["jwks_uri"]), dict(document))


class DiscoveryStatus(Enum):
    PENDING = "pending"  # the SSO has not answered in this run yet
    FOUND = "found"
    NOT_FOUND = "not_found"  # no document at any discovery path
    FAILED = "failed"  # unreachable, an error status, or a document that does not validate


@dataclass(frozen=True)
class DiscoveryResult:
    status: DiscoveryStatus
    metadata: ProviderMetadata | None = None
    url: str | None = None  # where the document was found
    reason: str = ""


async def fetch_provider_metadata(http: httpx.AsyncClient, sso_url: str) -> DiscoveryResult:
    """The SSO's discovery document, tried at each of :data:`DISCOVERY_PATHS` in turn.

    404/410 or a body that is not a JSON object (an application's catch-all page) means "not
    here"; a network error stops at once (the other path is on the same host)."""
    base = sso_url.rstrip("/")
    problems: list[str] = []
    for path in DISCOVERY_PATHS:
        url = base + path
        try:
            response = await http.get(url, timeout=DISCOVERY_FETCH_TIMEOUT)
        except (httpx.HTTPError, ValueError) as exc:
            return DiscoveryResult(
                DiscoveryStatus.FAILED, url=url, reason=f"{type(exc).__name__}: {exc}"
            )
        if response.status_code in (404, 410):
            continue
        if response.status_code != 200:
            problems.append(f"{url}: HTTP {response.status_code}")
            continue
        try:
            document = response.json()
        except ValueError:
            continue
        if not isinstance(document, dict):
            continue
        try:
            return DiscoveryResult(DiscoveryStatus.FOUND, provider_metadata(document), url)
        except ValueError as exc:
            problems.append(f"{url}: {exc}")
    if problems:
        return DiscoveryResult(DiscoveryStatus.FAILED, reason="; ".join(problems))
    tried = ", ".join(base + path for path in DISCOVERY_PATHS)
    return DiscoveryResult(DiscoveryStatus.NOT_FOUND, reason=f"no document at {tried}")


def resolve_jwks_url(
    explicit: str | None, metadata: ProviderMetadata | None, source: Source, default: str
) -> Resolved:
    """``JWKS_URL`` wins, then the discovery document's ``jwks_uri``, then the default path."""
    if explicit:
        return Resolved(explicit, Source.EXPLICIT)
    if metadata is not None:
        return Resolved(metadata.jwks_uri, source)
    return Resolved(default, Source.DEFAULT)


def resolve_issuer(
    explicit: str | None, metadata: ProviderMetadata | None, source: Source, *, check: bool
) -> Resolved:
    """``JWT_ISSUER_CHECK=off`` → nothing checked; else ``JWT_ISSUER`` wins, then the discovery
    document's ``issuer``; else none is known (:attr:`Source.NONE`)."""
    if not check:
        return Resolved(None, Source.OFF)
    if explicit:
        return Resolved(explicit, Source.EXPLICIT)
    if metadata is not None:
        return Resolved(metadata.issuer, source)
    return Resolved(None, Source.NONE)


class ProviderConfiguration:
    """Which issuer to enforce and where to fetch the key set, from the explicit settings, the
    SSO's discovery document (fetched on the key set's refresh schedule, or persisted with the
    last good key set) and the defaults.

    A found document replaces the one held; a failed or missing one keeps the last good one
    (an SSO outage or a proxy's 404 must not drop the issuer being enforced)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        sso_url: str,
        default_jwks_url: str,
        explicit_issuer: str | None = None,
        explicit_jwks_url: str | None = None,
        discovery: bool = True,
        issuer_check: bool = True,
        issuer_required: bool = False,
    ) -> None:
        self.http = http
        self.sso_url = sso_url.rstrip("/")
        self.default_jwks_url = default_jwks_url
        self.explicit_issuer = explicit_issuer
        self.explicit_jwks_url = explicit_jwks_url
        self.discovery = discovery
        self.issuer_check = issuer_check
        # Production: an issuer must be enforced, so none known means no token is accepted.
        self.issuer_required = issuer_required
        self.status = DiscoveryStatus.PENDING
        self.metadata: ProviderMetadata | None = None
        self.metadata_source = Source.NONE
        self._last_result: tuple[DiscoveryStatus, str] | None = None
        self._logged: tuple[Resolved, Resolved] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.AsyncClient) -> ProviderConfiguration:
        return cls(
            http,
            sso_url=settings.sso_url,
            default_jwks_url=settings.default_jwks_url,
            explicit_issuer=settings.jwt_issuer,
            explicit_jwks_url=settings.jwks_url,
            discovery=settings.oidc_discovery,
            issuer_check=settings.jwt_issuer_check,
            issuer_required=settings.is_production,
        )

    # what is trusted ---------------------------------------------------------------------
    @property
    def discovery_needed(self) -> bool:
        """Discovery adds nothing when the issuer and the JWKS URL are both explicit (or the
        issuer is not checked and the JWKS URL is explicit)."""
        issuer_open = self.issuer_check and not self.explicit_issuer
        return self.discovery and (issuer_open or not self.explicit_jwks_url)

    @property
    def jwks_url(self) -> Resolved:
        return resolve_jwks_url(
            self.explicit_jwks_url, self.metadata, self.metadata_source, self.default_jwks_url
        )

    @property
    def issuer(self) -> Resolved:
        return resolve_issuer(
            self.explicit_issuer, self.metadata, self.metadata_source, check=self.issuer_check
        )

    def expected_issuer(self) -> str | None:
        """The ``iss`` every token must carry; ``None`` when none is checked. With discovery as
        the issuer source in production and no issuer known yet (SSO down, nothing persisted,
        or no document), no token is accepted: ``ServiceUnavailable``."""
        resolved = self.issuer
        if resolved.source is Source.NONE and self.issuer_required and self.discovery:
            raise ServiceUnavailable(AUTH_UNAVAILABLE)
        return resolved.value

    def facts(self) -> dict[str, Any]:
        """For ``/health/ready``: where each value came from."""
        return {
            "issuer_source": self.issuer.source.value,
            "jwks_url_source": self.jwks_url.source.value,
            "discovery": self.status.value if self.discovery_needed else "not needed",
        }

    # updating ----------------------------------------------------------------------------
    def seed(self, document: dict[str, Any]) -> None:
        """Start from the document persisted with the last good key set (validated again)."""
        if not self.discovery_needed or self.metadata is not None:
            return
        try:
            self.metadata = provider_metadata(document)
        except ValueError as exc:
            log.warning("oidc_discovery_persisted_invalid", error=str(exc))
            return
        self.metadata_source = Source.PERSISTED

    async def refresh(self) -> None:
        """Fetch the discovery document again (never raises; the outcome is logged when it
        changes)."""
        if not self.discovery_needed:
            return
        result = await fetch_provider_metadata(self.http, self.sso_url)
        if result.status is DiscoveryStatus.FOUND and result.metadata is not None:
            if result.metadata != self.metadata or self.metadata_source is not Source.DISCOVERED:
                log.info(
                    "oidc_discovery_found",
                    url=result.url,
                    issuer=result.metadata.issuer,
                    jwks_uri=result.metadata.jwks_uri,
                )
            self.metadata, self.metadata_source = result.metadata, Source.DISCOVERED
        elif (result.status, result.reason) != self._last_result:
            kept = "the last good document" if self.metadata is not None else "no document"
            event = (
                "oidc_discovery_not_found"
                if result.status is DiscoveryStatus.NOT_FOUND
                else "oidc_discovery_failed"
            )
            log.warning(event, sso_url=self.sso_url, reason=result.reason, using=kept)
        self._last_result = (result.status, result.reason)
        self.status = result.status
        self.log_configuration()

    def current_url(self) -> str:
        """Where to fetch the key set now (``JWKSCache`` refreshes this object with each fetch
        of the keys, so discovery follows the key set's refresh schedule)."""
        return self.jwks_url.value or self.default_jwks_url

    def log_configuration(self) -> None:
        """Say where the issuer and the JWKS URL come from, whenever that changes."""
        issuer, jwks_url = self.issuer, self.jwks_url
        if (issuer, jwks_url) == self._logged:
            return
        self._logged = (issuer, jwks_url)
        facts = (self.sso_url, issuer, jwks_url, self.status)
        if facts in _LOGGED_IN_PROCESS:
            return  # `serve all`: the three apps of one process share one configuration
        _LOGGED_IN_PROCESS.add(facts)
        log.info(
            "sso_configuration",
            sso_url=self.sso_url,
            issuer=issuer.value,
            issuer_source=issuer.source.value,
            jwks_url=jwks_url.value,
            jwks_url_source=jwks_url.source.value,
            discovery=self.status.value if self.discovery_needed else "not needed",
        )
        if issuer.source is Source.NONE and not (
            self.discovery_needed and self.status is DiscoveryStatus.PENDING
        ):
            if self.issuer_required and self.discovery:
                log.error(
                    "issuer_unknown_tokens_refused",
                    reason="ENV=production takes the issuer from discovery and none is known"
                    " yet; tokens get 503 until the SSO answers (or set JWT_ISSUER)",
                )
            else:
                log.warning("issuer_not_checked", reason="no JWT_ISSUER and no discovery document")
