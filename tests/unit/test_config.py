from __future__ import annotations

import pytest
from taskflow_core.config import ConfigError, Settings


def test_defaults_need_only_database_and_sso() -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgres://h/db", "SSO_URL": "https://sso.x"})
    assert settings.effective_jwks_url == "https://sso.x/api/auth/jwks"
    assert settings.allowed_origins == ("http://localhost:3000", "http://localhost:3001")
    assert not settings.dev_mode


def test_jwks_url_overrides_sso_default() -> None:
    settings = Settings.from_env({"SSO_URL": "https://sso.x", "JWKS_URL": "http://v/jwks"})
    assert settings.effective_jwks_url == "http://v/jwks"


def test_allowed_origins_are_split_and_stripped() -> None:
    settings = Settings.from_env({"ALLOWED_ORIGINS": " https://a.x , https://b.x,, "})
    assert settings.allowed_origins == ("https://a.x", "https://b.x")


def test_dev_mode_refused_in_production() -> None:
    with pytest.raises(ConfigError, match="DEV_MODE"):
        Settings.from_env({"DEV_MODE": "true", "ENV": "production"})


def test_bad_log_format_refused() -> None:
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        Settings.from_env({"LOG_FORMAT": "xml"})


@pytest.mark.parametrize(
    "secret",
    [
        "CHANGE-ME-to-a-long-random-value",  # deploy/k8s/config.yaml
        "compose-dev-only-service-secret",  # docker-compose.yml's default
        "replace-me-with-something-long-and-random-0123",
        "0123456789abcdef0123456789abcde",  # 31 bytes
    ],
)
def test_production_refuses_a_placeholder_or_short_service_secret(secret: str) -> None:
    with pytest.raises(ConfigError, match="SERVICE_SECRET"):
        Settings.from_env({"ENV": "production", "SERVICE_SECRET": secret})
    Settings.from_env({"ENV": "development", "SERVICE_SECRET": secret})  # dev keeps working


def test_production_accepts_a_long_random_service_secret_or_none() -> None:
    production = {"ENV": "production", "JWT_AUDIENCE": "taskflow-dashboard"}
    Settings.from_env({**production, "SERVICE_SECRET": "0123456789abcdef" * 2})
    # Unset: each process makes a random one (fine for `serve all`; split services need one).
    assert Settings.from_env(production).service_secret is None
