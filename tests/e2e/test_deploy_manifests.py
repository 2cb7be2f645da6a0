"""Offline checks of what operators deploy: docker-compose.yml against the Compose
specification's JSON schema (vendored by check-jsonschema), the Kubernetes manifests against the
API schemas (kubernetes-validate), and the facts the stack relies on (probes, non-root, metrics
annotations, the gateway's upstream names, Dockerfile targets and build arguments)."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from taskflow_core.gateway import ROUTE_TABLE

from tests.e2e.conftest import ROOT
from tests.support.processes import ASGI_MODULES

K8S = ROOT / "deploy" / "k8s"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
K8S_VERSION = "1.30.0"  # the oldest Kubernetes these manifests promise to run on
SERVICES = ("tasks", "audit", "auth-verifier")


def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in k8s_documents() if d["kind"] == kind}


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def dockerfile_stages() -> dict[str, str]:
    """Stage name -> its text."""
    text = DOCKERFILE.read_text()
    stages: dict[str, str] = {}
    for match in re.finditer(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", text, re.M | re.I):
        end = re.compile(r"^FROM\s", re.M | re.I).search(text, match.end())
        stages[match.group(1)] = text[match.start() : end.start() if end else len(text)]
    return stages


# docker compose ---------------------------------------------------------------------------
def test_compose_file_matches_the_compose_specification() -> None:
    schema_file = files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(compose()), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_schema_check_catches_a_broken_compose_file() -> None:
    schema_file = files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    broken = compose()
    broken["services"]["tasks"]["depends_on"] = {"migrate": {"condition": "whenever"}}
    broken["services"]["gateway"]["portz"] = ["8080:8080"]
    assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))


def test_compose_stack_is_wired_as_documented() -> None:
    services = compose()["services"]
    assert {"postgres", "migrate", "gateway", "dev-token", *SERVICES} <= set(services)
    stages = dockerfile_stages()
    for name in SERVICES:
        svc = services[name]
        # Migrations run once, before any service starts.
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert svc["build"]["target"] in stages
        args = svc["build"]["args"]
        assert args["PACKAGE"] == f"taskflow-{name}"
        assert args["ASGI_APP"] == ASGI_MODULES[name]
        env = svc["environment"]
        assert env["DATABASE_URL"].startswith("postgresql://")
        assert env["SERVICE_SECRET"] and env["JWKS_URL"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["auth-verifier"]["environment"]["DEV_ISSUER"] == "true"
    gateway = services["gateway"]
    assert gateway["build"]["target"] == "gateway"
    assert any(str(p).endswith(":8080") for p in gateway["ports"])
    assert all(gateway["depends_on"][s]["condition"] == "service_healthy" for s in SERVICES)
    # The printed way to get a token shares the dev issuer's key with the verifier.
    token = services["dev-token"]
    assert "taskflow token" in token["command"][0]
    assert token["volumes"] == services["auth-verifier"]["volumes"]


# Dockerfile -------------------------------------------------------------------------------
def test_dockerfile_builds_with_the_lock_file_and_runs_unprivileged() -> None:
    stages = dockerfile_stages()
    assert {"service", "tools", "gateway"} <= set(stages)
    text = DOCKERFILE.read_text()
    assert "uv.lock" in text
    syncs = re.findall(r"uv sync ([^\n]*)", text)
    assert syncs and all("--frozen" in s and "--no-dev" in s for s in syncs)
    for stage in ("service", "tools", "gateway"):
        users = re.findall(r"^USER\s+(\S+)", stages[stage], re.M)
        assert users and users[-1].split(":")[0] not in ("root", "0"), stage
    for stage in ("service", "gateway"):
        assert "HEALTHCHECK" in stages[stage], stage
    # Build arguments the compose file passes exist in the Dockerfile.
    declared = set(re.findall(r"^ARG\s+(\w+)", text, re.M))
    for svc in compose()["services"].values():
        assert set(svc.get("build", {}).get("args", {})) <= declared


# Kubernetes -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path,doc",
    k8s_documents(),
    ids=[f"{p.name}:{d['kind']}/{d['metadata']['name']}" for p, d in k8s_documents()],
)
def test_kubernetes_manifest_is_valid(path: Path, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_kubernetes_validation_catches_a_broken_manifest() -> None:
    deployment = json.loads(json.dumps(by_kind("Deployment")["tasks"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] = {
        "not": "a port"
    }
    deployment["spec"]["replicaz"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


def test_service_deployments_are_probed_limited_unprivileged_and_scraped() -> None:
    deployments = by_kind("Deployment")
    services = by_kind("Service")
    hpas = by_kind("HorizontalPodAutoscaler")
    for name in SERVICES:
        pod = deployments[name]["spec"]["template"]
        spec = pod["spec"]
        (container,) = spec["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        assert annotations["prometheus.io/port"] == str(container["ports"][0]["containerPort"])
        env_from = {next(iter(e.values()))["name"] for e in container["envFrom"]}
        assert env_from == {"taskflow-config", "taskflow-secrets"}
        # The gateway reaches each service as <name>:8000.
        assert services[name]["spec"]["ports"][0]["port"] == 8000
        assert hpas[name]["spec"]["scaleTargetRef"]["name"] == name
        assert hpas[name]["spec"]["maxReplicas"] > hpas[name]["spec"]["minReplicas"]
    gateway = deployments["gateway"]["spec"]["template"]["spec"]
    assert gateway["securityContext"]["runAsNonRoot"] is True
    assert "gateway" in hpas
    ingress = by_kind("Ingress")["taskflow"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "gateway"
    # Everything the route table can send somewhere has a Service behind it.
    assert {rule.service for rule in ROUTE_TABLE} <= set(services)


def test_configuration_carries_the_database_and_sso_settings() -> None:
    config = by_kind("ConfigMap")["taskflow-config"]["data"]
    secret = by_kind("Secret")["taskflow-secrets"]["stringData"]
    assert "DATABASE_URL" in secret and "DATABASE_URL" not in config
    assert "sslmode=require" in secret["DATABASE_URL"]  # Neon needs TLS
    assert config["SSO_URL"].startswith("https://")
    assert config["ENV"] == "production"
    assert "DEV_ISSUER" not in config and "DEV_MODE" not in config
    job = by_kind("Job")["taskflow-migrate"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("name", SERVICES)
def test_a_service_image_environment_runs_its_app_alone(name: str, tmp_path: Path) -> None:
    """What the Dockerfile's ``service`` target installs (``uv sync --package``, no dev, no
    editable) is enough to build the app, and leaves the CLI and embedded PostgreSQL out."""
    import os
    import shutil
    import subprocess

    # `uv run` names itself in $UV (the uv uvw fetched is on no PATH).
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH (and the tests were not started by `uv run`)")
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    env.pop("VIRTUAL_ENV", None)
    sync = subprocess.run(
        [uv, "sync", "--frozen", "--offline", "--no-dev", "--no-editable", "--quiet",
         "--package", f"taskflow-{name}"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert sync.returncode == 0, sync.stderr
    module = ASGI_MODULES[name].split(":")[0]
    probe = (
        "import importlib.util, sys\n"
        f"import {module} as m\n"
        "assert m.app.routes\n"
        "import uvicorn\n"
        "import httptools, uvloop\n"  # the server stack the image's command line selects
        "assert importlib.util.find_spec('taskflow_cli') is None\n"
        "assert importlib.util.find_spec('pgserver') is None\n"
    )
    run = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "DATABASE_URL": "postgresql://u@127.0.0.1:1/db"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr


def test_the_gateway_image_render_step_runs(tmp_path: Path) -> None:
    """The Dockerfile's render command line: every flag exists and the script writes the
    config and the merged document (with the compose resolver, as compose builds it)."""
    import subprocess
    import sys

    stage = dockerfile_stages()["gateway-render"]
    command = re.search(r"RUN (/app/\.venv/bin/python deploy/nginx/render\.py.*?)\n\n", stage, re.S)
    assert command is not None
    flags = set(re.findall(r"(--[a-z-]+)", command.group(1)))
    help_text = subprocess.run(
        [sys.executable, "deploy/nginx/render.py", "--help"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert all(flag in help_text for flag in flags), flags
    out = tmp_path / "gateway"
    subprocess.run(
        [sys.executable, "deploy/nginx/render.py", "--out", str(out), "--listen", "8080",
         "--openapi-file", "/etc/nginx/taskflow/openapi.json", "--access-log", "/dev/stdout",
         "--allowed-origins", "http://localhost:3000", "--max-body-bytes", "1048576",
         "--resolver", "127.0.0.11"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    config = (out / "nginx.conf").read_text()
    assert "listen 8080;" in config and "server tasks:8000 max_fails=0 resolve;" in config
    assert "alias /etc/nginx/taskflow/openapi.json;" in config
    assert json.loads((out / "openapi.json").read_text())["paths"]
