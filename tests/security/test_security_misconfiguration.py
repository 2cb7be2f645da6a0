"""OWASP API8:2023 Security Misconfiguration: what a production deployment refuses to run with,
and who may reach the internal routes in the Kubernetes manifests.

- ``ENV=production`` refuses, at start-up, a ``SERVICE_SECRET`` that is a known placeholder
  (the Kubernetes template's, the compose file's default, anything spelled like one) or shorter
  than 32 bytes: a credential minted from it would read ``/internal/tasks/...`` and write
  forged audit entries.
- Each service accepts traffic only from the pods that call it (internal routes included): the
  gateway, the services named as its callers, and Prometheus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from taskflow_core.config import ConfigError, Settings

from tests.e2e.conftest import ROOT
from tests.support.processes import ServiceProcess

K8S = ROOT / "deploy" / "k8s"
COMPOSE = ROOT / "docker-compose.yml"
STRONG_SECRET = "7b1f0c9e4a2d4e8f9c3b6a5d1e0f2a4c8b7d6e5f"  # 40 random hex characters
PRODUCTION = {
    "ENV": "production",
    "JWT_ISSUER": "https://sso.example.com",
    "JWT_AUDIENCE": "taskflow-api",
    "SSO_URL": "http://127.0.0.1:9",
    "LOG_FORMAT": "json",
}


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def k8s_documents() -> list[dict[str, Any]]:
    return [
        d
        for p in sorted(K8S.glob("*.yaml"))
        if p.name != "kustomization.yaml"
        for d in documents(p)
    ]


def shipped_placeholders() -> dict[str, str]:
    """The SERVICE_SECRET values the repository itself ships (templates and defaults)."""
    secret = next(d for d in k8s_documents() if d["kind"] == "Secret")
    compose_env = documents(COMPOSE)[0]["x-service-env"]["SERVICE_SECRET"]
    default = compose_env.split(":-", 1)[1].rstrip("}")  # ${SERVICE_SECRET:-<default>}
    return {"kubernetes template": secret["stringData"]["SERVICE_SECRET"], "compose": default}


WEAK_SECRETS = {
    **shipped_placeholders(),
    "short": "Zq7!kP2#vL9x",  # random, but 12 bytes
    "31 bytes": "9f8e7d6c5b4a39281706f5e4d3c2b1a",  # random, one byte short
    "spelled like a placeholder": "please-change-me-before-deploying-this-thing",
    "a documentation example": "your-service-secret-goes-here-0123456789",
}


@pytest.mark.parametrize("what", sorted(WEAK_SECRETS))
def test_production_refuses_a_weak_service_secret_at_start(
    what: str, db_url: str, tmp_path: Path
) -> None:
    env = {**PRODUCTION, "DATABASE_URL": db_url, "SERVICE_SECRET": WEAK_SECRETS[what]}
    log = tmp_path / "tasks.log"
    with pytest.raises(RuntimeError, match="exited"):
        ServiceProcess("tasks", env, log_path=log).start(timeout=60)
    assert "SERVICE_SECRET" in log.read_text(errors="replace"), log.read_text()[-2000:]
    with pytest.raises(ConfigError, match="SERVICE_SECRET"):
        Settings.from_env(env)


def test_production_starts_with_a_strong_secret_and_development_keeps_its_defaults(
    db_url: str, tmp_path: Path
) -> None:
    strong = {**PRODUCTION, "DATABASE_URL": db_url, "SERVICE_SECRET": STRONG_SECRET}
    proc = ServiceProcess("tasks", strong, log_path=tmp_path / "tasks.log").start(timeout=60)
    proc.stop()
    # docker compose runs ENV=development with its default: that stays allowed.
    Settings.from_env({"SERVICE_SECRET": shipped_placeholders()["compose"]})
    Settings.from_env({"ENV": "production", **{k: v for k, v in PRODUCTION.items() if k != "ENV"}})


def test_the_kubernetes_template_does_not_start_until_its_secret_is_replaced() -> None:
    config = next(d for d in k8s_documents() if d["kind"] == "ConfigMap")["data"]
    secret = next(d for d in k8s_documents() if d["kind"] == "Secret")["stringData"]
    with pytest.raises(ConfigError, match="SERVICE_SECRET"):
        Settings.from_env({**config, **secret})
    Settings.from_env({**config, **secret, "SERVICE_SECRET": STRONG_SECRET})


# NetworkPolicy ----------------------------------------------------------------------------------
# Who calls which service (internal routes included): taskflow_tasks.internal (audit asks
# tasks), the audit ingestion (tasks' outbox relay), /introspect (tasks and audit), and the
# gateway for the public API and forward-auth.
CALLERS = {
    "tasks": {"gateway", "audit"},
    "audit": {"gateway", "tasks"},
    "auth-verifier": {"gateway", "tasks", "audit"},
}
MONITORING = "namespace:monitoring"


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) applied to ``labels``."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if operator == "In" and (not present or labels[key] not in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def pods() -> dict[str, dict[str, str]]:
    """Name -> pod labels, for every workload of the manifests (Deployments and Jobs)."""
    found = {}
    for doc in k8s_documents():
        if doc["kind"] in {"Deployment", "Job"}:
            found[doc["metadata"]["name"]] = doc["spec"]["template"]["metadata"]["labels"]
    return found


def allowed_sources(service: str) -> set[str]:
    """Pods (by workload name) and namespaces the NetworkPolicies let reach ``service``'s pods."""
    workloads = pods()
    target = workloads[service]
    sources: set[str] = set()
    policies = [d for d in k8s_documents() if d["kind"] == "NetworkPolicy"]
    selecting = [p for p in policies if selects(p["spec"]["podSelector"], target)]
    assert selecting, f"no NetworkPolicy isolates {service}"
    for policy in selecting:
        assert "Ingress" in policy["spec"]["policyTypes"]
        for rule in policy["spec"].get("ingress") or []:
            for peer in rule.get("from") or []:
                if "namespaceSelector" in peer:
                    names = peer["namespaceSelector"].get("matchLabels", {})
                    sources.add("namespace:" + names.get("kubernetes.io/metadata.name", "*"))
                    continue
                sources |= {
                    n for n, labels in workloads.items() if selects(peer["podSelector"], labels)
                }
    return sources


@pytest.mark.parametrize("service", sorted(CALLERS))
def test_only_the_callers_of_a_service_may_reach_it(service: str) -> None:
    assert allowed_sources(service) == CALLERS[service] | {MONITORING}
