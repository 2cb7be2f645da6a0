"""The production settings shipped in deploy/k8s/config.yaml pass the production refusals for
token claims (issue 21, finding 4): a service started from them verifies iss and aud."""

from __future__ import annotations

import secrets
from pathlib import Path

import yaml
from taskflow_core.config import Settings

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "config.yaml"


def test_kubernetes_config_sets_issuer_and_audience_and_starts_in_production() -> None:
    documents = [d for d in yaml.safe_load_all(CONFIG.read_text(encoding="utf-8")) if d]
    (config,) = [d["data"] for d in documents if d["kind"] == "ConfigMap"]
    assert config["ENV"] == "production"
    assert config["JWT_ISSUER"].startswith("https://") and config["JWT_AUDIENCE"]
    # The Secret holds placeholders an operator replaces; stand in a real-looking secret.
    settings = Settings.from_env({**config, "SERVICE_SECRET": secrets.token_urlsafe(48)})
    assert (settings.jwt_issuer, settings.jwt_audience) == (
        config["JWT_ISSUER"],
        config["JWT_AUDIENCE"],
    )
