"""Agents (reference §1.4, tenant-owned) and the workers overview (§1.5, SSO merge)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.support.issuer import TestIssuer

from .conftest import Database, User

AGENT = {"handle": "@helper", "name": "Helper", "agent_type": "qwen", "capabilities": ["py"]}


def test_agent_crud_and_tenant_ownership(make_user, db: Database) -> None:
    alice: User = make_user("alice-agents")
    colleague: User = make_user("carol-agents")  # same tenant
    mallory: User = make_user("mallory-agents", tenant="tenant-b")

    created = alice.post("/api/workers/agents", json=AGENT)
    assert created.status_code == 201
    agent = created.json()
    assert set(agent) == {
        "id", "handle", "name", "type", "user_id", "agent_type", "capabilities", "created_at"
    }  # fmt: skip
    assert (agent["type"], agent["user_id"], agent["capabilities"]) == ("agent", None, ["py"])
    dup = alice.post("/api/workers/agents", json=AGENT)
    assert (dup.status_code, dup.json()["error"]) == (400, "Handle '@helper' already exists")

    second = alice.post(
        "/api/workers/agents", json={**AGENT, "handle": "@helper2", "capabilities": []}
    ).json()
    listed = alice.get("/api/workers/agents").json()
    assert [a["id"] for a in listed] == [second["id"], agent["id"]]  # newest first
    assert (
        alice.get("/api/workers/agents", params={"limit": 1, "offset": 1}).json()[0]["id"]
        == (agent["id"])
    )
    # the tenant owns its agents: a colleague manages them, another tenant cannot see them
    assert colleague.get(f"/api/workers/agents/{agent['id']}").status_code == 200
    assert mallory.get("/api/workers/agents").json() == []
    for call in (
        mallory.get(f"/api/workers/agents/{agent['id']}"),
        mallory.put(f"/api/workers/agents/{agent['id']}", json={"name": "Mine"}),
        mallory.delete(f"/api/workers/agents/{agent['id']}"),
    ):
        assert (call.status_code, call.json()["error"]) == (404, "Agent not found")

    human_id = db.value("SELECT id FROM tasks.workers WHERE user_id = 'alice-agents'")
    not_agent = alice.get(f"/api/workers/agents/{human_id}")
    assert (not_agent.status_code, not_agent.json()["error"]) == (404, "Not an agent")

    updated = colleague.put(
        f"/api/workers/agents/{agent['id']}",
        json={"name": "Helper v2", "agent_type": None, "capabilities": ["py", "sql"]},
    )
    assert updated.status_code == 200
    assert (updated.json()["name"], updated.json()["agent_type"]) == ("Helper v2", "qwen")
    events = db.events(entity_type="worker", entity_id=agent["id"])
    assert [e["action"] for e in events] == ["created", "updated"]
    assert events[1]["details"] == {
        "name": {"before": "Helper", "after": "Helper v2"},
        "capabilities": {"before": ["py"], "after": ["py", "sql"]},
    }
    deleted = alice.delete(f"/api/workers/agents/{second['id']}")
    assert (deleted.status_code, deleted.json()) == (200, {"ok": True})
    assert alice.get(f"/api/workers/agents/{second['id']}").status_code == 404
    assert [e["action"] for e in db.events(entity_type="worker", entity_id=second["id"])] == [
        "created", "deleted"
    ]  # fmt: skip


def test_agent_delete_refused_while_a_member_and_unassigns_its_tasks(
    make_user, db: Database
) -> None:
    """The contract (reference §1.4): a member agent is refused (400); once out of every
    project, deleting it answers 200 and leaves its tasks unassigned, each unassignment
    audited."""
    alice: User = make_user("alice-agent-refs")
    agent = alice.post("/api/workers/agents", json=AGENT).json()
    pid = alice.post("/api/projects", json={"slug": "refs", "name": "Refs"}).json()["id"]
    member = alice.post(f"/api/projects/{pid}/members", json={"agent_id": agent["id"]}).json()
    tasks = [
        alice.post(
            f"/api/projects/{pid}/tasks", json={"title": f"Do {n}", "assignee_id": agent["id"]}
        ).json()["id"]
        for n in range(2)
    ]

    before = db.snapshot()
    in_project = alice.delete(f"/api/workers/agents/{agent['id']}")
    assert in_project.status_code == 400
    assert in_project.json()["error"] == (
        "Agent is a member of one or more projects. Remove from projects first."
    )
    assert db.snapshot() == before
    alice.delete(f"/api/projects/{pid}/members/{member['id']}")
    deleted = alice.delete(f"/api/workers/agents/{agent['id']}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"ok": True}
    for task in tasks:
        assert alice.get(f"/api/tasks/{task}").json()["assignee_id"] is None
        unassigned = db.events(entity_type="task", entity_id=task, action="assigned")
        assert [e["details"]["before"] for e in unassigned] == [agent["id"]]
        assert unassigned[0]["details"]["after"] is None
        assert unassigned[0]["details"]["reason"] == "agent_deleted"
    assert db.events(entity_type="worker", entity_id=agent["id"], action="deleted")


def test_agent_that_created_tasks_is_not_deleted(make_user, db: Database) -> None:
    """The creator of a task is its history: an agent that created tasks is kept (409)."""
    alice: User = make_user("alice-agent-author")
    bot: User = make_user("alice-agent-author", actor_type="agent", client_id="cli-bot")
    assert bot.get("/api/workers/agents").status_code == 200  # its first call provisions it
    agent = next(a for a in alice.get("/api/workers/agents").json() if a["type"] == "agent")
    pid = alice.post("/api/projects", json={"slug": "authored", "name": "A"}).json()["id"]
    member = alice.post(f"/api/projects/{pid}/members", json={"agent_id": agent["id"]}).json()
    made = bot.post(f"/api/projects/{pid}/tasks", json={"title": "Written by the bot"})
    assert made.status_code == 201, made.text
    alice.delete(f"/api/projects/{pid}/members/{member['id']}")

    before = db.snapshot()
    refused = alice.delete(f"/api/workers/agents/{agent['id']}")
    assert refused.status_code == 409
    assert "created 1 task" in refused.json()["error"]
    assert db.snapshot() == before


def test_workers_overview_merges_sso_members(make_user, issuer: TestIssuer) -> None:
    alice: User = make_user("alice-overview", tenant="org-overview")
    pid = alice.post("/api/projects", json={"slug": "ov", "name": "Overview"}).json()["id"]
    alice.post("/api/workers/agents", json={**AGENT, "handle": "@ov-bot"})
    issuer.org_members["org-overview"] = [
        {"userId": "alice-overview", "email": "alice@x.test", "name": "Alice", "role": "owner"},
        {"userId": "dave-overview", "email": "dave@x.test", "name": None, "role": "member"},
    ]
    r = alice.get("/api/workers")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total_members"] == 2 and body["total_agents"] == 1
    assert body["unassigned_count"] == 1
    first, second = body["org_members"]
    assert first["user_id"] == "alice-overview" and first["has_project_access"] is True
    assert [p["id"] for p in first["projects"]][-1] == pid
    assert {p["role"] for p in first["projects"]} == {"owner"}
    assert second["name"] == "dave"  # falls back to the email's local part
    assert second["projects"] == [] and second["has_project_access"] is False
    assert [a["handle"] for a in body["agents"]] == ["@ov-bot"]


class _FailingSSO:
    """An SSO whose organisation-members endpoint answers the status named in the org id
    (``org-401`` → 401); it records the headers it was sent."""

    def __init__(self) -> None:
        seen = self.seen = []  # type: list[dict[str, str]]

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if not self.path.startswith("/api/organizations/"):
                    self.send_error(404)  # e.g. OIDC discovery: this SSO publishes none
                    return
                seen.append(dict(self.headers))
                status = int(self.path.split("/")[3].removeprefix("org-"))
                data = json.dumps({"error": "nope"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_workers_overview_maps_sso_failures(start_service, db_url: str, issuer: TestIssuer) -> None:
    sso = _FailingSSO()
    try:
        svc = start_service("tasks", DATABASE_URL=db_url, SSO_URL=sso.url, JWKS_URL=issuer.jwks_url)
        for status, expected, message in (
            (401, 401, "SSO authentication failed"),
            (403, 403, "Not a member of this organization"),
            (500, 502, "Failed to fetch org members from SSO: 500"),
            (404, 502, "Failed to fetch org members from SSO: 404"),
        ):
            token = issuer.token(f"user-sso-{status}", tenant_id=f"org-{status}")
            r = httpx.get(
                f"{svc.url}/api/workers", headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
            assert (r.status_code, r.json()["error"]) == (expected, message)
        assert sso.seen[0]["Authorization"].startswith("Bearer ")  # the caller's token
    finally:
        sso.close()


def test_workers_overview_sso_unreachable_is_502(
    start_service, db_url: str, issuer: TestIssuer
) -> None:
    svc = start_service(
        "tasks",
        DATABASE_URL=db_url,
        SSO_URL="http://127.0.0.1:9",  # nothing listens on the discard port
        JWKS_URL=issuer.jwks_url,
    )
    token = issuer.token("erin-unreachable", tenant_id="t-x")
    r = httpx.get(
        f"{svc.url}/api/workers", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert r.status_code == 502
    assert r.json()["error"].startswith("Failed to connect to SSO:")


def test_idempotent_agent_and_member_creation(make_user, db: Database) -> None:
    alice: User = make_user("alice-idem-agents")
    pid = alice.post("/api/projects", json={"slug": "idem", "name": "Idem"}).json()["id"]
    body = {**AGENT, "handle": "@idem-bot"}
    key = {"Idempotency-Key": "agent-1"}
    first = alice.post("/api/workers/agents", json=body, headers=key)
    again = alice.post("/api/workers/agents", json=body, headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert len(db.events(entity_type="worker", entity_id=first.json()["id"])) == 1

    member_key = {"Idempotency-Key": "member-1"}
    add = {"agent_id": first.json()["id"]}
    one = alice.post(f"/api/projects/{pid}/members", json=add, headers=member_key)
    two = alice.post(f"/api/projects/{pid}/members", json=add, headers=member_key)
    assert (one.status_code, two.status_code) == (201, 201)  # not "Already a member"
    assert two.json() == one.json()
    assert len(db.events(entity_type="project", entity_id=pid, action="member_added")) == 1
    # the same key on another endpoint is a different request: 422
    reused = alice.post("/api/projects", json={"slug": "x", "name": "X"}, headers=member_key)
    assert reused.status_code == 422
