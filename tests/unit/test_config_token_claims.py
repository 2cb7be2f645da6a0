"""What production refuses to start without for token claims (issue 21, finding 4): an audience
and an issuer source, unless explicitly opted out; contradictions are refused everywhere."""

from __future__ import annotations

import pytest
from taskflow_core.config import ConfigError, Settings

PRODUCTION = {"ENV": "production", "SERVICE_SECRET": "s" * 48}


def test_production_without_audience_is_refused_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"^JWT_AUDIENCE is required when ENV=production"):
        Settings.from_env({**PRODUCTION, "JWT_ISSUER": "https://sso.x"})


def test_production_without_issuer_source_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^JWT_ISSUER is required .* OIDC_DISCOVERY=off"):
        Settings.from_env({**PRODUCTION, "JWT_AUDIENCE": "dash", "OIDC_DISCOVERY": "off"})


@pytest.mark.parametrize(
    "env",
    [
        {"JWT_AUDIENCE": "dash", "JWT_ISSUER": "https://sso.x"},
        {"JWT_AUDIENCE": "dash"},  # discovery (on by default) is the issuer source
        {"JWT_AUDIENCE": "dash", "OIDC_DISCOVERY": "off", "JWT_ISSUER": "https://sso.x"},
        {"JWT_AUDIENCE": "dash", "OIDC_DISCOVERY": "off", "JWT_ISSUER_CHECK": "off"},
        {"JWT_AUDIENCE_CHECK": "off", "JWT_ISSUER": "https://sso.x"},
    ],
)
def test_production_starts_with_audience_and_issuer_source_or_opt_outs(
    env: dict[str, str],
) -> None:
    settings = Settings.from_env({**PRODUCTION, **env})
    assert settings.is_production


def test_development_needs_neither() -> None:
    settings = Settings.from_env({"SSO_URL": "https://sso.x"})
    assert (settings.jwt_issuer, settings.jwt_audience) == (None, None)
    assert settings.oidc_discovery and settings.jwt_issuer_check and settings.jwt_audience_check


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"JWT_AUDIENCE": "dash", "JWT_AUDIENCE_CHECK": "off"}, "JWT_AUDIENCE_CHECK=off"),
        ({"JWT_ISSUER": "https://sso.x", "JWT_ISSUER_CHECK": "off"}, "JWT_ISSUER_CHECK=off"),
    ],
)
def test_an_opt_out_beside_its_value_is_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{message} contradicts"):
        Settings.from_env(env)


def test_validate_checks_settings_built_in_code_too() -> None:
    with pytest.raises(ConfigError, match="JWT_AUDIENCE"):
        Settings(env="production", service_secret="s" * 48).validate()
