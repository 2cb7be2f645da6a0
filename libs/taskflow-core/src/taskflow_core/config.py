"""Typed settings read from the environment, shared by every service.

Each setting is documented in the README's configuration table; keep the two in step.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_TENANT = "taskflow-default-org-id"


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(value: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    return tuple(item.strip() for item in value.split(",") if item.strip())


def utcnow() -> datetime:
    """The one clock of the services: an aware UTC datetime."""
    return datetime.now(UTC)


class ConfigError(ValueError):
    """A setting has a value the services refuse to start with."""


@dataclass(frozen=True)
class Settings:
    """Everything a service needs to know about its environment."""

    database_url: str | None = None
    sso_url: str = "http://localhost:3001"
    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    # OIDC discovery at SSO_URL gives the issuer to enforce and the JWKS URL (explicit wins).
    oidc_discovery: bool = True
    # Opt-outs of the production refusals below: off = that claim is never checked. Dangerous.
    jwt_issuer_check: bool = True
    jwt_audience_check: bool = True
    allowed_origins: tuple[str, ...] = ("http://localhost:3000", "http://localhost:3001")
    log_level: str = "INFO"
    log_format: str = "json"
    env: str = "development"
    dev_mode: bool = False
    dev_user_id: str = "dev-user-123"
    dev_user_email: str = "dev@localhost"
    dev_user_name: str = "Dev User"
    tasks_url: str = "http://127.0.0.1:8001"
    audit_url: str = "http://127.0.0.1:8002"
    auth_verifier_url: str = "http://127.0.0.1:8003"
    service_secret: str | None = None
    jwks_cache_ttl: float = 3600.0
    jwks_stale_ttl: float = 86400.0
    jwks_min_refresh_interval: float = 30.0
    api_key_cache_ttl: float = 30.0
    introspection_cache_ttl: float = 30.0
    dev_issuer: bool = False
    http_timeout: float = 5.0
    db_pool_min_size: int = 0
    db_pool_max_size: int = 15
    db_pool_timeout: float = 5.0
    db_connect_timeout: float = 5.0
    db_statement_timeout_ms: int = 15000
    max_body_bytes: int = 1_048_576
    rate_limit_per_minute: int = 0
    outbox_relay_interval: float = 1.0
    # Wake the relay from writes (in-process) and, per OUTBOX_LISTEN, from LISTEN/NOTIFY.
    outbox_wakeup: bool = True
    outbox_listen: str = "auto"  # auto (off behind a transaction pooler) | on | off
    scheduler_interval: float = 5.0
    data_dir: Path = Path(".taskflow-dev")
    # Injectable for tests: the clock every service uses.
    clock: Callable[[], datetime] = field(default=utcnow, compare=False, repr=False)

    @property
    def effective_jwks_url(self) -> str:
        """``JWKS_URL``, else Better Auth's default path (OIDC discovery may name another)."""
        return self.jwks_url or self.default_jwks_url

    @property
    def default_jwks_url(self) -> str:
        return f"{self.sso_url.rstrip('/')}/api/auth/jwks"

    @property
    def is_production(self) -> bool:
        return self.env.lower() in {"production", "prod"}

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: ``os.environ``) and validate them."""
        e = os.environ if env is None else env
        d = cls()
        settings = cls(
            database_url=e.get("DATABASE_URL") or None,
            sso_url=e.get("SSO_URL", d.sso_url),
            jwks_url=e.get("JWKS_URL") or None,
            jwt_issuer=e.get("JWT_ISSUER") or None,
            jwt_audience=e.get("JWT_AUDIENCE") or None,
            oidc_discovery=_bool(e.get("OIDC_DISCOVERY"), default=True),
            jwt_issuer_check=_bool(e.get("JWT_ISSUER_CHECK"), default=True),
            jwt_audience_check=_bool(e.get("JWT_AUDIENCE_CHECK"), default=True),
            allowed_origins=_list(e.get("ALLOWED_ORIGINS"), d.allowed_origins),
            log_level=e.get("LOG_LEVEL", d.log_level).upper(),
            log_format=e.get("LOG_FORMAT", d.log_format).lower(),
            env=e.get("ENV", d.env),
            dev_mode=_bool(e.get("DEV_MODE")),
            dev_user_id=e.get("DEV_USER_ID", d.dev_user_id),
            dev_user_email=e.get("DEV_USER_EMAIL", d.dev_user_email),
            dev_user_name=e.get("DEV_USER_NAME", d.dev_user_name),
            tasks_url=e.get("TASKS_URL", d.tasks_url),
            audit_url=e.get("AUDIT_URL", d.audit_url),
            auth_verifier_url=e.get("AUTH_VERIFIER_URL", d.auth_verifier_url),
            service_secret=e.get("SERVICE_SECRET") or None,
            jwks_cache_ttl=float(e.get("JWKS_CACHE_TTL", d.jwks_cache_ttl)),
            jwks_stale_ttl=float(e.get("JWKS_STALE_TTL", d.jwks_stale_ttl)),
            jwks_min_refresh_interval=float(
                e.get("JWKS_MIN_REFRESH_INTERVAL", d.jwks_min_refresh_interval)
            ),
            api_key_cache_ttl=float(e.get("API_KEY_CACHE_TTL", d.api_key_cache_ttl)),
            introspection_cache_ttl=float(
                e.get("INTROSPECTION_CACHE_TTL", d.introspection_cache_ttl)
            ),
            dev_issuer=_bool(e.get("DEV_ISSUER")),
            http_timeout=float(e.get("HTTP_TIMEOUT", d.http_timeout)),
            db_pool_min_size=int(e.get("DB_POOL_MIN_SIZE", d.db_pool_min_size)),
            db_pool_max_size=int(e.get("DB_POOL_MAX_SIZE", d.db_pool_max_size)),
            db_pool_timeout=float(e.get("DB_POOL_TIMEOUT", d.db_pool_timeout)),
            db_connect_timeout=float(e.get("DB_CONNECT_TIMEOUT", d.db_connect_timeout)),
            db_statement_timeout_ms=int(
                e.get("DB_STATEMENT_TIMEOUT_MS", d.db_statement_timeout_ms)
            ),
            max_body_bytes=int(e.get("MAX_BODY_BYTES", d.max_body_bytes)),
            rate_limit_per_minute=int(e.get("RATE_LIMIT_PER_MINUTE", d.rate_limit_per_minute)),
            outbox_relay_interval=float(e.get("OUTBOX_RELAY_INTERVAL", d.outbox_relay_interval)),
            outbox_wakeup=_bool(e.get("OUTBOX_WAKEUP"), default=True),
            outbox_listen=e.get("OUTBOX_LISTEN", d.outbox_listen).strip().lower() or "auto",
            scheduler_interval=float(e.get("SCHEDULER_INTERVAL", d.scheduler_interval)),
            data_dir=Path(e.get("TASKFLOW_DATA_DIR", str(d.data_dir))),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        # Production refuses a SERVICE_SECRET anyone could know (issue 21, finding 6): a
        # credential minted from it reads internal routes and writes forged audit entries.
        if self.is_production and self.service_secret is not None:
            refusal = service_secret_refusal(self.service_secret)
            if refusal:
                raise ConfigError(f"SERVICE_SECRET {refusal}; refused when ENV=production")
        if self.dev_mode and self.is_production:
            raise ConfigError("DEV_MODE=true is refused when ENV=production")
        if self.dev_issuer and self.is_production:
            raise ConfigError("DEV_ISSUER=true is refused when ENV=production")
        if self.log_format not in {"json", "console"}:
            raise ConfigError("LOG_FORMAT must be 'json' or 'console'")
        if self.outbox_listen not in {"auto", "on", "off"}:
            raise ConfigError("OUTBOX_LISTEN must be 'auto', 'on' or 'off'")
        if not 0 <= self.db_pool_min_size <= self.db_pool_max_size:
            raise ConfigError("DB_POOL_MIN_SIZE must be between 0 and DB_POOL_MAX_SIZE")
        self._validate_token_claims()

    def _validate_token_claims(self) -> None:
        """Issuer and audience: a contradiction is refused everywhere; production refuses to
        start without an audience and an issuer source unless explicitly opted out."""
        if self.jwt_audience and not self.jwt_audience_check:
            raise ConfigError("JWT_AUDIENCE_CHECK=off contradicts JWT_AUDIENCE: unset one of them")
        if self.jwt_issuer and not self.jwt_issuer_check:
            raise ConfigError("JWT_ISSUER_CHECK=off contradicts JWT_ISSUER: unset one of them")
        if not self.is_production:
            return
        if self.jwt_audience_check and not self.jwt_audience:
            raise ConfigError(
                "JWT_AUDIENCE is required when ENV=production: the audience your SSO issues"
                " tokens for (the dashboard's OAuth client id); JWT_AUDIENCE_CHECK=off accepts"
                " tokens for any audience (dangerous)"
            )
        if self.jwt_issuer_check and not self.jwt_issuer and not self.oidc_discovery:
            raise ConfigError(
                "JWT_ISSUER is required when ENV=production and OIDC_DISCOVERY=off: set it, or"
                " turn discovery on; JWT_ISSUER_CHECK=off accepts tokens from any issuer"
                " (dangerous)"
            )


# -- SERVICE_SECRET in production ---------------------------------------------------------------
SERVICE_SECRET_MIN_BYTES = 32
# SERVICE_SECRET values this repository ships (deploy/k8s, docker-compose.yml) and words that
# mark a value as "to be replaced": production refuses them.
KNOWN_PLACEHOLDER_SECRETS = frozenset(
    {"change-me-to-a-long-random-value", "compose-dev-only-service-secret"}
)
PLACEHOLDER_WORDS = (
    "change-me", "changeme", "change_me", "replace-me", "replaceme", "placeholder",
    "example", "goes-here", "your-", "dev-only", "insecure", "not-secret", "xxxxxxxx",
)  # fmt: skip


def service_secret_refusal(secret: str) -> str | None:
    """Why ``secret`` is unfit for production (a placeholder, or too short), else ``None``."""
    lowered = secret.strip().lower()
    if lowered in KNOWN_PLACEHOLDER_SECRETS or any(w in lowered for w in PLACEHOLDER_WORDS):
        return "is a placeholder: set a long random value (e.g. `openssl rand -hex 32`)"
    if len(secret.encode()) < SERVICE_SECRET_MIN_BYTES:
        return f"is shorter than {SERVICE_SECRET_MIN_BYTES} bytes"
    return None
