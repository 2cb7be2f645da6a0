"""Members and member search (reference §1.3) with tenant isolation and the search fixes."""

from __future__ import annotations

from .conftest import Database, User


def _project(user: User, slug: str) -> int:
    r = user.post("/api/projects", json={"slug": slug, "name": slug})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _agent(user: User, handle: str, name: str = "Agent") -> int:
    r = user.post(
        "/api/workers/agents", json={"handle": handle, "name": name, "agent_type": "claude"}
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_add_list_remove_members(make_user, db: Database) -> None:
    alice: User = make_user("alice-members", email="alice.smith@example.test")
    pid = _project(alice, "crew")
    agent_id = _agent(alice, "@coder")

    # checks on the body come first, with the old messages
    for body, message in (
        ({}, "Provide either user_id or agent_id"),
        ({"user_id": "", "agent_id": 0}, "Provide either user_id or agent_id"),
        ({"user_id": "u1", "agent_id": agent_id}, "Provide only one of user_id or agent_id"),
    ):
        r = alice.post(f"/api/projects/{pid}/members", json=body)
        assert (r.status_code, r.json()["error"]) == (400, message)

    added_agent = alice.post(f"/api/projects/{pid}/members", json={"agent_id": agent_id})
    assert added_agent.status_code == 201
    assert added_agent.json()["worker_id"] == agent_id
    assert set(added_agent.json()) == {
        "id", "worker_id", "handle", "name", "type", "role", "joined_at"
    }  # fmt: skip
    again = alice.post(f"/api/projects/{pid}/members", json={"agent_id": agent_id})
    assert (again.status_code, again.json()["error"]) == (400, "Already a member of this project")

    # a user who never logged in: placeholder worker, audited
    placeholder = alice.post(f"/api/projects/{pid}/members", json={"user_id": "Zed12345678"})
    assert placeholder.status_code == 201
    member = placeholder.json()
    assert (member["handle"], member["name"], member["type"]) == (
        "@user-zed12345", "User Zed12345", "human"
    )  # fmt: skip
    created = db.events(entity_type="worker", entity_id=member["worker_id"], action="created")
    assert len(created) == 1 and created[0]["details"]["placeholder"] is True

    # when they log in later, that worker is theirs (no second worker)
    zed: User = make_user("Zed12345678")
    assert [p["id"] for p in zed.get("/api/projects").json()][1:] == [pid]
    assert db.value("SELECT count(*) FROM tasks.workers WHERE user_id = 'Zed12345678'") == 1

    humans_self = alice.post(f"/api/projects/{pid}/members", json={"agent_id": member["worker_id"]})
    assert (humans_self.status_code, humans_self.json()["error"]) == (400, "Worker is not an agent")
    missing = alice.post(f"/api/projects/{pid}/members", json={"agent_id": 999999})
    assert (missing.status_code, missing.json()["error"]) == (404, "Agent not found")

    listed = alice.get(f"/api/projects/{pid}/members").json()
    assert [m["handle"] for m in listed] == ["@alice-smith", "@coder", "@user-zed12345"]
    assert [m["role"] for m in listed] == ["owner", "member", "member"]
    assert alice.get(f"/api/projects/{pid}").json()["member_count"] == 3

    owner_row = listed[0]["id"]
    refused = alice.delete(f"/api/projects/{pid}/members/{owner_row}")
    assert (refused.status_code, refused.json()["error"]) == (400, "Cannot remove project owner")
    not_owner = zed.delete(f"/api/projects/{pid}/members/{listed[1]['id']}")
    assert (not_owner.status_code, not_owner.json()["error"]) == (
        403, "Only project owner can remove members"
    )  # fmt: skip
    not_owner_add = zed.post(f"/api/projects/{pid}/members", json={"user_id": "x"})
    assert (not_owner_add.status_code, not_owner_add.json()["error"]) == (
        403, "Only project owner can add members"
    )  # fmt: skip
    removed = alice.delete(f"/api/projects/{pid}/members/{listed[1]['id']}")
    assert (removed.status_code, removed.json()) == (200, {"ok": True})
    gone = alice.delete(f"/api/projects/{pid}/members/{listed[1]['id']}")
    assert (gone.status_code, gone.json()["error"]) == (404, "Member not found in this project")
    # a membership of another project is not found through this one
    other = _project(alice, "other")
    foreign = alice.delete(f"/api/projects/{other}/members/{listed[2]['id']}")
    assert foreign.status_code == 404

    project_events = db.events(entity_type="project", entity_id=pid)
    assert [e["action"] for e in project_events] == [
        "created", "member_added", "member_added", "member_removed"
    ]  # fmt: skip
    assert project_events[1]["details"]["handle"] == "@coder"
    assert project_events[3]["details"]["worker_id"] == agent_id


def test_member_search_is_tenant_scoped_escaped_and_counts_all(make_user) -> None:
    alice: User = make_user("alice-search", name="Alice Search")
    mallory: User = make_user("mallory-search", tenant="tenant-b", name="Mallory 100%")
    pid = _project(alice, "search")
    for n in range(4):
        _agent(alice, f"@bot_{n}", name=f"Bot {n}")
    _agent(alice, "@botx1", name="Botx")
    _agent(mallory, "@bot-elsewhere", name="Bot elsewhere")
    mallory.get("/api/projects")

    r = alice.get("/api/members/search", params={"q": "BOT", "limit": 2})
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 5  # all matches, not the page size
    assert len(body["members"]) == 2
    assert body["members"][0] == {
        "id": "@bot_0", "name": "Bot 0", "handle": "@bot_0", "type": "agent",
        "description": "AI Agent",
    }  # fmt: skip

    # "_" is literal: "bot_" matches the four @bot_N handles, not "@botx1"
    underscored = alice.get("/api/members/search", params={"q": "bot_"}).json()
    assert sorted(m["handle"] for m in underscored["members"]) == [f"@bot_{n}" for n in range(4)]
    # "%" is literal too, and other tenants' workers are never listed
    assert alice.get("/api/members/search", params={"q": "%"}).json()["total"] == 0
    assert mallory.get("/api/members/search", params={"q": "100%"}).json()["total"] == 1
    everyone = alice.get("/api/members/search", params={"limit": 50}).json()
    handles = [m["handle"] for m in everyone["members"]]
    assert "@bot-elsewhere" not in handles and "@mallory-search" not in handles
    assert handles[0] == "@alice-search"  # humans first, then agents by name
    assert everyone["members"][0]["description"] == "Team Member"

    in_project = alice.get("/api/members/search", params={"project_id": pid}).json()
    assert [m["handle"] for m in in_project["members"]] == ["@alice-search"]
    assert mallory.get("/api/members/search", params={"project_id": pid}).status_code == 404
    bob: User = make_user("bob-search")
    assert bob.get("/api/members/search", params={"project_id": pid}).status_code == 403
    for params in ({"limit": 0}, {"limit": 51}, {"q": "x" * 201}, {"project_id": "abc"}):
        assert alice.get("/api/members/search", params=params).status_code == 422, params
