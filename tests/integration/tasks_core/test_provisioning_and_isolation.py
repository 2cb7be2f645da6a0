"""First-login provisioning (exactly once under a race, audited, per tenant), agent callers,
and isolation: another tenant gets 404, a non-member of the same tenant 403, on every id."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.support.issuer import TestIssuer

from .conftest import Database, User


def test_ten_concurrent_first_requests_provision_once(
    tasks_url: str, issuer: TestIssuer, db: Database
) -> None:
    token = issuer.token("racer-0001", tenant_id="tenant-race", email="racer@example.test")
    paths = ["/api/projects", "/api/workers/agents", "/api/members/search"] * 4

    def call(path: str) -> int:
        r = httpx.get(tasks_url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        return r.status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(call, paths[:10]))
    assert statuses == [200] * 10
    assert db.value("SELECT count(*) FROM tasks.workers WHERE user_id = 'racer-0001'") == 1
    defaults = db.rows(
        "SELECT slug, name, description, tenant_id FROM tasks.projects WHERE is_default"
    )
    assert defaults == [
        {
            "slug": "default-racer-00",
            "name": "Default",
            "description": "Your personal task workspace",
            "tenant_id": "tenant-race",
        }
    ]
    assert db.value("SELECT count(*) FROM tasks.project_members") == 1
    worker_events = db.events(entity_type="worker", action="created")
    project_events = db.events(entity_type="project", action="created")
    assert len(worker_events) == 1 and len(project_events) == 1
    assert worker_events[0]["details"]["handle"] == "@racer"
    assert project_events[0]["details"]["is_default"] is True


def test_each_tenant_gets_its_own_default_project_and_one_worker(make_user, db: Database) -> None:
    in_a: User = make_user("multi-org-user", tenant="org-a")
    in_b: User = make_user("multi-org-user", tenant="org-b")
    a_projects = in_a.get("/api/projects").json()
    b_projects = in_b.get("/api/projects").json()
    assert [(p["tenant_id"], p["is_default"]) for p in a_projects] == [("org-a", True)]
    assert [(p["tenant_id"], p["is_default"]) for p in b_projects] == [("org-b", True)]
    assert a_projects[0]["slug"] == b_projects[0]["slug"] == "default-multi-or"
    assert db.value("SELECT count(*) FROM tasks.workers WHERE user_id = 'multi-org-user'") == 1
    # the handle derives from the email's local part; a clash gets a suffix
    other: User = make_user("another-user", email="multi-org-user@other.test")
    other.get("/api/projects")
    assert db.value("SELECT handle FROM tasks.workers WHERE user_id = 'another-user'") == (
        "@multi-org-user-1"
    )


def test_agent_token_maps_to_an_agent_worker(make_user, db: Database) -> None:
    owner: User = make_user("owner-of-agent")
    pid = owner.post("/api/projects", json={"slug": "agents-here", "name": "A"}).json()["id"]
    agent: User = make_user(
        "owner-of-agent", actor_type="agent", client_id="key-123", client_name="Build Bot"
    )
    # not a member yet: the agent worker exists but sees no projects and gets 403 on this one
    assert agent.get("/api/projects").json() == []
    assert agent.get(f"/api/projects/{pid}").status_code == 403
    row = db.rows(
        "SELECT id, handle, type, tenant_id FROM tasks.workers"
        " WHERE agent_sub = 'owner-of-agent' AND agent_client_id = 'key-123'"
    )
    assert [(r["handle"], r["type"], r["tenant_id"]) for r in row] == [
        ("@build-bot", "agent", "tenant-a")
    ]
    assert (
        owner.post(f"/api/projects/{pid}/members", json={"agent_id": row[0]["id"]}).status_code
        == 201
    )
    made = agent.post("/api/projects", json={"slug": "by-agent", "name": "By agent"})
    assert made.status_code == 201
    event = db.events(entity_type="project", entity_id=made.json()["id"], action="created")[0]
    assert (event["actor_type"], event["actor_handle"], event["actor_id"]) == (
        "agent", "@build-bot", row[0]["id"]
    )  # fmt: skip
    assert event["details"]["client_id"] == "key-123"
    assert event["details"]["client_name"] == "Build Bot"


def test_no_id_crosses_a_tenant_or_a_membership(make_user, db: Database) -> None:
    alice: User = make_user("alice-iso", tenant="tenant-a")
    nina: User = make_user("nina-non-member", tenant="tenant-a")
    mallory: User = make_user("mallory-iso", tenant="tenant-b")
    pid = alice.post("/api/projects", json={"slug": "secret", "name": "Secret"}).json()["id"]
    agent = alice.post("/api/workers/agents", json={
        "handle": "@iso-bot", "name": "Iso", "agent_type": "custom"
    }).json()  # fmt: skip
    member = alice.post(f"/api/projects/{pid}/members", json={"agent_id": agent["id"]}).json()
    task = alice.post(f"/api/projects/{pid}/tasks", json={"title": "Hidden"}).json()
    nina.get("/api/projects")
    mallory.get("/api/projects")
    before = db.snapshot()

    calls = [
        ("GET", f"/api/projects/{pid}", None),
        ("PUT", f"/api/projects/{pid}", {"name": "Owned"}),
        ("DELETE", f"/api/projects/{pid}", None),
        ("GET", f"/api/projects/{pid}/members", None),
        ("POST", f"/api/projects/{pid}/members", {"user_id": "intruder"}),
        ("DELETE", f"/api/projects/{pid}/members/{member['id']}", None),
        ("GET", f"/api/projects/{pid}/tasks", None),
        ("POST", f"/api/projects/{pid}/tasks", {"title": "Planted"}),
        ("GET", f"/api/tasks/{task['id']}", None),
        ("PUT", f"/api/tasks/{task['id']}", {"title": "Changed"}),
        ("DELETE", f"/api/tasks/{task['id']}", None),
    ]
    for method, path, body in calls:
        cross = mallory.http.request(method, path, json=body)
        assert cross.status_code == 404, (method, path, cross.text)
        outsider = nina.http.request(method, path, json=body)
        assert outsider.status_code == 403, (method, path, outsider.text)
    # member search by project id, agents by id: not across tenants
    assert mallory.get("/api/members/search", params={"project_id": pid}).status_code == 404
    assert nina.get("/api/members/search", params={"project_id": pid}).status_code == 403
    for method in ("GET", "PUT", "DELETE"):
        body = {"name": "x"} if method == "PUT" else None
        r = mallory.http.request(method, f"/api/workers/agents/{agent['id']}", json=body)
        assert r.status_code == 404
    assert all(p["id"] != pid for p in mallory.get("/api/projects").json())
    assert all(p["id"] != pid for p in nina.get("/api/projects").json())
    assert "@iso-bot" not in str(mallory.get("/api/members/search").json())
    assert db.snapshot() == before


def test_provisioning_joins_the_request_and_is_undone_with_it(make_user, db: Database) -> None:
    newcomer: User = make_user("late-comer-1")
    missing = newcomer.get("/api/projects/999999")
    assert missing.status_code == 404
    assert db.value("SELECT count(*) FROM tasks.workers WHERE user_id = 'late-comer-1'") == 0
    assert db.events() == []
    assert newcomer.get("/api/projects").status_code == 200
    assert db.value("SELECT count(*) FROM tasks.workers WHERE user_id = 'late-comer-1'") == 1
    assert [(e["entity_type"], e["action"]) for e in db.events()] == [
        ("worker", "created"),
        ("project", "created"),
    ]


def test_overlong_tenant_claim_is_refused_not_a_500(make_user, db: Database) -> None:
    odd: User = make_user("odd-tenant-user", tenant="t" * 101)
    r = odd.get("/api/projects")
    assert r.status_code == 401
    assert "Tenant id" in r.json()["error"]
    assert db.value("SELECT count(*) FROM tasks.workers") == 0
