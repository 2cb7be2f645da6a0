"""Offline: the compose file and the Dockerfile still name the official base images by default
(deploy/podman/ swaps them only through variables), and the podman scripts, CI and the tests
agree on the stand-ins' names."""

from __future__ import annotations

import re
import subprocess

import yaml

from tests.e2e.conftest import ROOT
from tests.support.postgres import DEFAULT_POSTGRES_IMAGE

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
OFFICIAL = {
    "PYTHON_IMAGE": "python:3.11-slim-bookworm",
    "UV_IMAGE": "ghcr.io/astral-sh/uv:0.13",
    "NGINX_IMAGE": "nginxinc/nginx-unprivileged:1.28-alpine",
}


def default_of(value: str) -> tuple[str, str]:
    """``${NAME:-default}`` -> (NAME, default)."""
    match = re.fullmatch(r"\$\{(\w+):?-([^}]*)\}", value)
    assert match, f"not a variable with a default: {value!r}"
    return match.group(1), match.group(2)


def test_the_dockerfile_defaults_are_the_official_images() -> None:
    declared = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", DOCKERFILE.read_text(), re.M))
    assert {name: declared[name] for name in OFFICIAL} == OFFICIAL


def test_compose_names_the_official_images_unless_told_otherwise() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert default_of(services["postgres"]["image"]) == ("POSTGRES_IMAGE", DEFAULT_POSTGRES_IMAGE)
    for name, service in services.items():
        args = service.get("build", {}).get("args", {})
        if not args:
            continue
        assert {k: default_of(args[k]) for k in OFFICIAL} == {
            k: (k, v) for k, v in OFFICIAL.items()
        }, name
    # Docker's embedded DNS, as before; the podman scripts set GATEWAY_RESOLVER="".
    assert default_of(services["gateway"]["build"]["args"]["RESOLVER"]) == (
        "GATEWAY_RESOLVER",
        "127.0.0.11",
    )


def test_ci_uses_the_stand_in_postgres_image_the_script_builds() -> None:
    standin = subprocess.run(
        ["bash", "-c", ". deploy/podman/images.sh && echo $STANDIN_POSTGRES_IMAGE"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert f"TEST_POSTGRES_IMAGE={standin}" in (ROOT / ".ci" / "run").read_text()


def test_the_replicas_override_runs_two_of_each_service() -> None:
    override = yaml.safe_load((ROOT / "deploy" / "docker" / "compose.replicas.yml").read_text())
    compose = yaml.safe_load(COMPOSE.read_text())["services"]
    for name in ("tasks", "audit", "auth-verifier"):
        assert name in compose
        # podman-compose reads `replicas` only with the mode said (Docker's default anyway).
        assert override["services"][name]["deploy"] == {"mode": "replicated", "replicas": 2}
