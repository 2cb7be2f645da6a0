"""OWASP API1:2023 Broken Object Level Authorization: every id-taking endpoint, called with
the ids of another user's objects (same tenant, not a member) and of another tenant's objects,
reads nothing and changes nothing. Cross-tenant is 404 (no existence oracle)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.reliability.stack import User
from tests.security.conftest import World

# (method, path template, json body or None, query params) -> who is refused how.
Endpoint = tuple[str, str, dict[str, Any] | None, dict[str, Any]]

TASKS_ENDPOINTS: list[Endpoint] = [
    ("GET", "/api/projects/{project_id}", None, {}),
    ("PUT", "/api/projects/{project_id}", {"name": "pwned"}, {}),
    ("DELETE", "/api/projects/{project_id}", None, {"force": "true"}),
    ("GET", "/api/projects/{project_id}/members", None, {}),
    ("POST", "/api/projects/{project_id}/members", {"user_id": "ATTACKER"}, {}),
    ("DELETE", "/api/projects/{project_id}/members/{member_id}", None, {}),
    ("GET", "/api/workers/agents/{agent_id}", None, {}),
    ("PUT", "/api/workers/agents/{agent_id}", {"name": "pwned"}, {}),
    ("DELETE", "/api/workers/agents/{agent_id}", None, {}),
    ("GET", "/api/projects/{project_id}/tasks", None, {}),
    ("POST", "/api/projects/{project_id}/tasks", {"title": "pwned"}, {}),
    ("GET", "/api/tasks/{task_id}", None, {}),
    ("PUT", "/api/tasks/{task_id}", {"title": "pwned"}, {}),
    ("DELETE", "/api/tasks/{task_id}", None, {}),
    ("PATCH", "/api/tasks/{task_id}/status", {"status": "in_progress"}, {}),
    ("PATCH", "/api/tasks/{task_id}/progress", {"percent": 10}, {}),
    ("PATCH", "/api/tasks/{task_id}/assign", {"assignee_id": None}, {}),
    ("POST", "/api/tasks/{task_id}/subtasks", {"title": "pwned"}, {}),
    ("POST", "/api/tasks/{task_id}/approve", None, {}),
    ("POST", "/api/tasks/{task_id}/reject", {"reason": "pwned"}, {}),
    ("GET", "/api/projects/{project_id}/webhooks", None, {}),
    ("POST", "/api/projects/{project_id}/webhooks", {"url": "https://example.com/pwned"}, {}),
    ("GET", "/api/projects/{project_id}/webhooks/{webhook_id}", None, {}),
    ("PATCH", "/api/projects/{project_id}/webhooks/{webhook_id}", {"active": False}, {}),
    ("DELETE", "/api/projects/{project_id}/webhooks/{webhook_id}", None, {}),
    ("GET", "/api/projects/{project_id}/webhooks/{webhook_id}/deliveries", None, {}),
    (
        "POST",
        "/api/projects/{project_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
        None,
        {},
    ),
]
AUDIT_ENDPOINTS: list[Endpoint] = [
    ("GET", "/api/tasks/{task_id}/audit", None, {}),
    ("GET", "/api/projects/{project_id}/audit", None, {}),
]
# Agents are shared inside their tenant (the issue: "agents belong to the tenant that
# registered them"), so only another tenant is refused there.
TENANT_SCOPED = {"/api/workers/agents/{agent_id}"}


def spec_id_operations(base_url: str) -> set[tuple[str, str]]:
    """(METHOD, path) of every public operation whose path takes an id."""
    spec = httpx.get(f"{base_url}/openapi.json", timeout=10).json()
    found = set()
    for path, item in spec["paths"].items():
        if "{" not in path or path.startswith("/internal"):
            continue
        for method in item:
            if method.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                found.add((method.upper(), path))
    return found


def test_every_id_taking_endpoint_is_covered(world: World) -> None:
    assert spec_id_operations(world.tasks_url) == {(m, p) for m, p, _, _ in TASKS_ENDPOINTS}
    assert spec_id_operations(world.audit_url) == {(m, p) for m, p, _, _ in AUDIT_ENDPOINTS}


def call(base_url: str, user: User, endpoint: Endpoint, ids: dict[str, int]) -> httpx.Response:
    method, template, body, params = endpoint
    if body is not None and body.get("user_id") == "ATTACKER":
        body = {"user_id": user.sub}
    with user.client(base_url) as api:
        return api.request(method, template.format(**ids), json=body, params=params)


def snapshot(world: World) -> dict[str, Any]:
    """What alice sees of her objects (compared before and after the attacks)."""
    with world.alice.client(world.tasks_url) as api:
        pid, tid = world.project["id"], world.task["id"]
        project = api.get(f"/api/projects/{pid}").json()
        task = api.get(f"/api/tasks/{tid}").json()
        members = api.get(f"/api/projects/{pid}/members").json()
        agent = api.get(f"/api/workers/agents/{world.agent['id']}").json()
        tasks = api.get(f"/api/projects/{pid}/tasks").json()
    return {
        "project": {k: project[k] for k in ("name", "description", "owner_id", "updated_at")},
        "task": {k: task[k] for k in ("title", "status", "progress_percent", "assignee_id")},
        "subtasks": sorted(t["id"] for t in task["subtasks"]),
        "members": sorted(m["id"] for m in members),
        "agent": {k: agent[k] for k in ("name", "handle", "agent_type")},
        "tasks": sorted(t["id"] for t in tasks),
    }


@pytest.mark.parametrize("attacker", ["mallory", "eve"])
def test_no_access_to_another_users_objects(world: World, attacker: str) -> None:
    user: User = getattr(world, attacker)
    ids = world.ids()
    # Control: the owner can reach every object (so a refusal below is about the attacker).
    for endpoint in TASKS_ENDPOINTS + AUDIT_ENDPOINTS:
        if endpoint[0] == "GET":
            base = world.audit_url if endpoint in AUDIT_ENDPOINTS else world.tasks_url
            resp = call(base, world.alice, endpoint, ids)
            assert resp.status_code == 200, (endpoint, resp.text)
    before = snapshot(world)
    events_before = world.outbox_count()

    failures = []
    for endpoint in TASKS_ENDPOINTS + AUDIT_ENDPOINTS:
        method, template = endpoint[0], endpoint[1]
        if attacker == "eve" and template in TENANT_SCOPED:
            continue
        base = world.audit_url if endpoint in AUDIT_ENDPOINTS else world.tasks_url
        resp = call(base, user, endpoint, ids)
        allowed = {404} if attacker == "mallory" and endpoint in TASKS_ENDPOINTS else {403, 404}
        if resp.status_code not in allowed:
            failures.append((method, template, resp.status_code, resp.text[:200]))
        elif "alice's" in resp.text or "secret" in resp.text:
            failures.append((method, template, resp.status_code, "leaks content"))
    assert not failures, failures
    assert snapshot(world) == before
    assert world.outbox_count() == events_before  # no audit event: nothing changed


@pytest.mark.parametrize("attacker", ["mallory", "eve"])
def test_ids_in_query_parameters_do_not_cross_either(world: World, attacker: str) -> None:
    user: User = getattr(world, attacker)
    pid = world.project["id"]
    world.wait_delivered()
    with user.client(world.tasks_url) as api:
        search = api.get("/api/members/search", params={"project_id": pid})
        assert search.status_code in {200, 403, 404}, search.text
        if search.status_code == 200:
            assert search.json()["members"] == [], search.text
        recent = api.get("/api/tasks/recent")
        assert recent.status_code == 200, recent.text
        assert world.task["id"] not in {t["id"] for t in recent.json()}
    with user.client(world.audit_url) as api:
        scoped = api.get("/api/audit", params={"project_id": pid})
        assert scoped.status_code in {200, 403, 404}, scoped.text
        if scoped.status_code == 200:
            assert scoped.json() == [] or not _entries(scoped.json()), scoped.text
        everything = api.get("/api/audit", params={"limit": 100})
        assert everything.status_code == 200, everything.text
        assert pid not in {e.get("project_id") for e in _entries(everything.json())}
        verify = api.get("/api/audit/verify", params={"project_id": pid})
        assert verify.status_code in {403, 404}, verify.text


def _entries(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, list):
        return body
    return list(body.get("items") or body.get("entries") or [])
