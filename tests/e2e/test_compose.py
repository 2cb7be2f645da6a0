"""docker-compose.yml for real, on podman (deploy/podman/): the images the Dockerfile builds run
unprivileged with working health checks, the README's way of getting a token and its curl lines
work against the gateway, a task's life is audited through the gateway, restarting the tasks
container in the middle of writes loses nothing, and compose-down.sh leaves nothing behind.

It brings the stack up itself (``bash deploy/podman/compose-up.sh``, a few minutes the first
time: base and service images are built, then cached) and down at the end, so it runs only when
asked: ``TASKFLOW_CONTAINER_TESTS=1 uv run pytest -n 0 tests/e2e/test_compose.py`` (as root, on
a machine where podman runs or can be installed; CI does it). One stack per machine: ``-n 0``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e

PODMAN = ROOT / "deploy" / "podman"
PROJECT = "taskflow"
SERVICES = ("tasks", "audit", "auth-verifier")
RETRYABLE = (502, 503, 504)
AUDIT_WAIT_S = 90.0  # bound for the relay to deliver after a restart; polls end sooner


def run(
    *command: str, timeout: float = 900, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {done.returncode}\n{done.stdout[-3000:]}\n"
            f"{done.stderr[-5000:]}"
        )
    return done


def containers_of(service: str) -> list[str]:
    out = run(
        "podman", "ps", "-a", "--filter", f"label=io.podman.compose.project={PROJECT}",
        "--filter", f"label=com.docker.compose.service={service}", "--format", "{{.Names}}",
    ).stdout  # fmt: skip
    return sorted(out.split())


def leftovers() -> list[str]:
    """Containers, volumes and networks of the compose project still on the machine."""
    found = []
    for kind in (("ps", "-a"), ("volume", "ls"), ("network", "ls")):
        names = run("podman", *kind, "--format", "{{.Names}}" if kind[0] == "ps" else "{{.Name}}")
        found += [n for n in names.stdout.split() if n.startswith(f"{PROJECT}_")]
    return found


@dataclass
class ComposeStack:
    url: str
    up_output: str
    token: str

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token or self.token}"},
            timeout=15.0,
        )

    def mint(self, sub: str, name: str) -> str:
        """A token from the stack's dev issuer, as README says to get one."""
        return run(
            "podman", "run", "--rm", "-v", f"{PROJECT}_devissuer:/data", "taskflow-tools:dev",
            "token", "--sub", sub, "--name", name,
        ).stdout.strip()  # fmt: skip


@pytest.fixture(scope="module")
def compose_stack() -> Iterator[ComposeStack]:
    if os.environ.get("TASKFLOW_CONTAINER_TESTS") != "1":
        pytest.skip("set TASKFLOW_CONTAINER_TESTS=1 to bring docker-compose.yml up on podman")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.fail("one compose stack per machine: run tests/e2e/test_compose.py with -n 0")
    if os.geteuid() != 0:
        pytest.fail("bringing the compose stack up on podman needs root (install, networks)")
    port = os.environ.get("TASKFLOW_PORT", "8080")
    up = run("bash", str(PODMAN / "compose-up.sh"))
    try:
        match = re.search(r"export TOKEN=(\S+)", up.stdout)
        assert match, f"compose-up.sh printed no token:\n{up.stdout}\n{up.stderr[-3000:]}"
        yield ComposeStack(f"http://127.0.0.1:{port}", up.stdout, match.group(1))
    finally:
        down = run("bash", str(PODMAN / "compose-down.sh"), check=False)
        assert down.returncode == 0, down.stderr
        assert leftovers() == []


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url.path} -> "
        f"{response.status_code}: {response.text[:500]}"
    )
    return response.json()


def audit_actions(client: httpx.Client, task_id: int) -> list[str] | None:
    """The task's audit actions, oldest first, read through the gateway (None: not now)."""
    response = client.get(f"/api/tasks/{task_id}/audit", params={"limit": 100})
    if response.status_code in RETRYABLE:
        return None
    entries = ok(response)
    return [e["action"] for e in sorted(entries, key=lambda e: (e["created_at"], e["id"]))]


def wait_for_audit(client: httpx.Client, wanted: dict[int, Counter[str]]) -> dict[int, list[str]]:
    """Poll until every task's trail holds at least what was written; returns the trails."""
    deadline = time.monotonic() + AUDIT_WAIT_S
    trails: dict[int, list[str]] = {}
    while time.monotonic() < deadline:
        for task_id in wanted:
            got = audit_actions(client, task_id)
            if got is not None:
                trails[task_id] = got
        if all(
            task_id in trails and Counter(trails[task_id]) >= actions
            for task_id, actions in wanted.items()
        ):
            return trails
        time.sleep(0.5)
    missing = {t: (dict(a), trails.get(t)) for t, a in wanted.items() if t not in trails}
    raise AssertionError(f"audit never caught up: {missing or trails}")


# --- the images --------------------------------------------------------------------------------


def test_every_service_image_runs_unprivileged_and_its_health_check_passes(
    compose_stack: ComposeStack,
) -> None:
    for service in (*SERVICES, "gateway"):
        (name,) = containers_of(service)
        uid = run("podman", "exec", name, "id", "-u").stdout.strip()
        assert uid != "0", f"{service} runs as root"
        # The image's own HEALTHCHECK (kept: built in the Docker format), run by podman.
        image = json.loads(run("podman", "image", "inspect", f"taskflow-{service}:dev").stdout)
        check = image[0].get("Healthcheck") or {}
        assert "/health" in " ".join(check.get("Test", [])), f"{service} image: no HEALTHCHECK"
        health = run("podman", "healthcheck", "run", name, check=False)
        assert health.returncode == 0, f"{service}: {health.stdout} {health.stderr}"
    assert (
        run(
            "podman", "run", "--rm", "--entrypoint", "id", "taskflow-tools:dev", "-u"
        ).stdout.strip()
        != "0"
    )
    assert ok(httpx.get(f"{compose_stack.url}/health", timeout=5))["status"] == "healthy"


def test_a_health_check_fails_when_the_service_does_not_answer(
    compose_stack: ComposeStack,
) -> None:
    """The HEALTHCHECK can fail: the tasks image with its server replaced by `sleep`."""
    name = f"taskflow-hc-{uuid.uuid4().hex[:8]}"
    run("podman", "run", "-d", "--name", name, "--entrypoint", "sleep", "taskflow-tasks:dev", "120")
    try:
        health = run("podman", "healthcheck", "run", name, check=False)
        assert health.returncode != 0 and "unhealthy" in health.stdout + health.stderr
    finally:
        run("podman", "rm", "-f", "-t", "0", name, check=False)


# --- the README --------------------------------------------------------------------------------


def readme_podman_block() -> str:
    """The sh block of README's "Deploying" section that drives the podman stack."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Deploying", 1)[1]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    block = next((b for b in blocks if "compose-up.sh" in b), None)
    assert block is not None, "README's Deploying section has no podman block"
    return block


def test_the_readmes_token_and_curl_lines_work(compose_stack: ComposeStack) -> None:
    block = readme_podman_block()
    lines = [
        line.strip()
        for line in block.splitlines()
        if line.strip().startswith(("export TOKEN=", "curl "))
    ]
    assert any(line.startswith("export TOKEN=") for line in lines)
    assert sum(line.startswith("curl ") for line in lines) >= 2
    script = "set -euo pipefail\n" + "\n".join(
        line + (" -fsS -o /dev/null -w '%{http_code}\\n'" if line.startswith("curl ") else "")
        for line in lines
    )
    done = run("bash", "-c", script, check=False)
    assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"
    assert all(code.startswith("2") for code in done.stdout.split()), done.stdout


# --- a task's life through the gateway ---------------------------------------------------------


def test_a_tasks_life_is_audited_through_the_gateway(compose_stack: ComposeStack) -> None:
    token = compose_stack.mint(f"life-{uuid.uuid4().hex[:6]}", "Life Cycle")
    with compose_stack.client(token) as api:
        project = ok(api.post("/api/projects", json={
            "slug": f"life-{uuid.uuid4().hex[:8]}", "name": "Compose life"}), 201)  # fmt: skip
        task = ok(api.post(f"/api/projects/{project['id']}/tasks",
                           json={"title": "Ship the compose file"}), 201)  # fmt: skip
        for status in ("in_progress", "review", "completed"):
            assert ok(api.patch(f"/api/tasks/{task['id']}/status",
                                json={"status": status}))["status"] == status  # fmt: skip
        wanted = Counter({"created": 1, "status_changed": 3})
        trail = wait_for_audit(api, {task["id"]: wanted})[task["id"]]
        assert trail == ["created", "status_changed", "status_changed", "status_changed"]


# --- restarting the tasks container mid-run ----------------------------------------------------

STEPS = ("in_progress", "review", "completed")


@dataclass
class Writer:
    """Creates tasks and walks each through STEPS, retrying a write the gateway could not
    deliver (502/503/504, connection errors) until it is known to have happened once: a
    create with the same Idempotency-Key, a status change after reading the task back."""

    api: httpx.Client
    project_id: int
    stop: threading.Event = field(default_factory=threading.Event)
    written: dict[int, Counter[str]] = field(default_factory=dict)
    retried: int = 0
    errors: list[str] = field(default_factory=list)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = self.api.request(method, path, **kwargs)
                if response.status_code not in RETRYABLE:
                    return response
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {path}: the stack did not come back in 60 s")
            self.retried += 1
            time.sleep(0.2)

    def status_of(self, task_id: int) -> str:
        return str(ok(self.request("GET", f"/api/tasks/{task_id}"))["status"])

    def change_status(self, task_id: int, status: str) -> None:
        try:
            response = self.api.patch(f"/api/tasks/{task_id}/status", json={"status": status})
            if response.status_code == 200:
                return
            if response.status_code not in RETRYABLE:
                self.errors.append(
                    f"PATCH {task_id} {status}: {response.status_code} {response.text[:200]}"
                )
                return
        except httpx.TransportError:
            pass
        # Unknown outcome: done only if the task shows it, else change it now.
        self.retried += 1
        if self.status_of(task_id) != status:
            response = self.request(
                "PATCH", f"/api/tasks/{task_id}/status", json={"status": status}
            )
            if response.status_code != 200:
                self.errors.append(f"PATCH {task_id} {status} (retry): {response.status_code}")

    def run(self) -> None:
        try:
            self.write_until_stopped()
        except Exception as exc:  # the test reports it; a dying thread would only warn
            self.errors.append(f"writer stopped: {exc}")

    def write_until_stopped(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            response = self.request(
                "POST", f"/api/projects/{self.project_id}/tasks",
                json={"title": f"restart task {n}"},
                headers={"Idempotency-Key": f"restart-{uuid.uuid4().hex}"},
            )  # fmt: skip
            if response.status_code != 201:
                self.errors.append(f"POST: {response.status_code} {response.text[:200]}")
                continue
            task_id = int(response.json()["id"])
            self.written[task_id] = Counter({"created": 1})
            for status in STEPS:
                self.change_status(task_id, status)
                self.written[task_id]["status_changed"] += 1


def test_restarting_the_tasks_container_mid_run_loses_nothing(
    compose_stack: ComposeStack,
) -> None:
    token = compose_stack.mint(f"restart-{uuid.uuid4().hex[:6]}", "Restart Writer")
    with compose_stack.client(token) as api:
        project = ok(api.post("/api/projects", json={
            "slug": f"restart-{uuid.uuid4().hex[:8]}", "name": "Restart"}), 201)  # fmt: skip
        writer = Writer(api, project["id"])
        thread = threading.Thread(target=writer.run)
        thread.start()
        try:
            time.sleep(3)
            before = len(writer.written)
            run("bash", str(PODMAN / "compose.sh"), "restart", "tasks", timeout=120)
            time.sleep(3)
        finally:
            writer.stop.set()
            thread.join(timeout=120)
        assert not writer.errors, writer.errors
        assert before > 0 and len(writer.written) > before, "no writes around the restart"
        trails = wait_for_audit(api, writer.written)
        # Exactly once: no write without its entry, none twice.
        assert {t: Counter(a) for t, a in trails.items()} == writer.written
        final = {t: writer.status_of(t) for t in writer.written}
        assert set(final.values()) == {"completed"}, final


# --- down ----------------------------------------------------------------------------------------


def test_the_stack_answered_on_the_port_readme_names(compose_stack: ComposeStack) -> None:
    assert "compose-up.sh" in readme_podman_block()
    assert f"{compose_stack.url}/api/projects" in compose_stack.up_output.replace(
        "localhost", "127.0.0.1"
    )
