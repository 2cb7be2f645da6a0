"""OWASP API3:2023 Broken Object Property Level Authorization: server-owned properties cannot be
mass-assigned (422, nothing written), and no response carries another tenant's personal data."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.reliability.stack import User, admin_connection, create_project, new_user
from tests.security.conftest import World
from tests.support.issuer import TestIssuer

PROJECT_OWNED = {
    "owner_id": "someone-else",
    "tenant_id": "another-org",
    "is_default": True,
    "id": 999999,
    "member_count": 0,
    "created_at": "2020-01-01T00:00:00Z",
}
TASK_OWNED = {
    "owner_id": "someone-else",
    "created_by_id": 1,
    "tenant_id": "another-org",
    "status": "completed",
    "project_id": 1,
    "id": 999999,
    "progress_percent": 100,
    "spawn_count": 7,
    "has_spawned_next": True,
    "completed_at": "2020-01-01T00:00:00Z",
    "started_at": "2020-01-01T00:00:00Z",
}
AGENT_OWNED = {"user_id": "someone", "tenant_id": "another-org", "id": 999999, "type": "human"}


def expect_422(resp: Any, field: str) -> None:
    assert resp.status_code == 422, (field, resp.status_code, resp.text)
    body = resp.json()
    assert body["status_code"] == 422
    assert field in resp.text, body  # the message names the refused field


@pytest.mark.parametrize("field", sorted(PROJECT_OWNED))
def test_project_properties_are_not_assignable(world: World, field: str) -> None:
    pid = world.project["id"]
    events = world.outbox_count()
    with world.alice.client(world.tasks_url) as api:
        before = api.get(f"/api/projects/{pid}").json()
        expect_422(api.put(f"/api/projects/{pid}", json={field: PROJECT_OWNED[field]}), field)
        expect_422(
            api.put(f"/api/projects/{pid}", json={"name": "ok", field: PROJECT_OWNED[field]}),
            field,
        )
        create = api.post(
            "/api/projects", json={"slug": "mass-assign", "name": "x", field: PROJECT_OWNED[field]}
        )
        expect_422(create, field)
        assert api.get(f"/api/projects/{pid}").json() == before
        assert "mass-assign" not in {p["slug"] for p in api.get("/api/projects").json()}
    assert world.outbox_count() == events


@pytest.mark.parametrize("field", sorted(TASK_OWNED))
def test_task_properties_are_not_assignable(world: World, field: str) -> None:
    tid, pid = world.task["id"], world.project["id"]
    events = world.outbox_count()
    with world.alice.client(world.tasks_url) as api:
        before = api.get(f"/api/tasks/{tid}").json()
        expect_422(api.put(f"/api/tasks/{tid}", json={field: TASK_OWNED[field]}), field)
        expect_422(
            api.put(f"/api/tasks/{tid}", json={"title": "ok", field: TASK_OWNED[field]}), field
        )
        expect_422(
            api.post(f"/api/projects/{pid}/tasks", json={"title": "x", field: TASK_OWNED[field]}),
            field,
        )
        expect_422(
            api.post(f"/api/tasks/{tid}/subtasks", json={"title": "x", field: TASK_OWNED[field]}),
            field,
        )
        after = api.get(f"/api/tasks/{tid}").json()
    assert after == before
    assert world.outbox_count() == events


@pytest.mark.parametrize("field", sorted(AGENT_OWNED))
def test_agent_properties_are_not_assignable(world: World, field: str) -> None:
    aid = world.agent["id"]
    with world.alice.client(world.tasks_url) as api:
        before = api.get(f"/api/workers/agents/{aid}").json()
        expect_422(api.put(f"/api/workers/agents/{aid}", json={field: AGENT_OWNED[field]}), field)
        create = api.post(
            "/api/workers/agents",
            json={
                "handle": "@mass",
                "name": "x",
                "agent_type": "claude",
                field: AGENT_OWNED[field],
            },
        )
        expect_422(create, field)
        assert api.get(f"/api/workers/agents/{aid}").json() == before


def responses_seen_by(world: World, user: User) -> list[str]:
    """Every list/search/overview a user can ask for, as raw text."""
    world.wait_delivered()
    texts = []
    with user.client(world.tasks_url) as api:
        for path, params in [
            ("/api/projects", {}),
            ("/api/members/search", {}),
            ("/api/members/search", {"q": "example"}),
            ("/api/members/search", {"q": "u-"}),
            ("/api/members/search", {"q": "@"}),
            ("/api/workers", {}),
            ("/api/workers/agents", {"limit": 100}),
            ("/api/tasks/recent", {}),
        ]:
            resp = api.get(path, params=params)
            assert resp.status_code == 200, (path, resp.text)
            texts.append(resp.text)
        for project in api.get("/api/projects").json():
            for sub in ("", "/members", "/tasks"):
                resp = api.get(f"/api/projects/{project['id']}{sub}")
                assert resp.status_code == 200, resp.text
                texts.append(resp.text)
    with user.client(world.audit_url) as api:
        resp = api.get("/api/audit", params={"limit": 100})
        assert resp.status_code == 200, resp.text
        texts.append(resp.text)
    return texts


@pytest.mark.parametrize(
    ("viewer", "others"),
    [("alice", ["mallory"]), ("eve", ["mallory"]), ("mallory", ["alice", "eve"])],
)
def test_no_personal_data_of_other_tenants(world: World, viewer: str, others: list[str]) -> None:
    texts = "\n".join(responses_seen_by(world, getattr(world, viewer)))
    for other in others:
        user: User = getattr(world, other)
        assert user.email not in texts, f"{viewer} sees {other}'s email"
        assert user.sub not in texts, f"{viewer} sees {other}'s id, handle or name"
    if viewer == "mallory":
        assert world.agent["handle"] not in texts, "mallory sees alice's tenant's agent"


def test_an_owner_adds_only_people_of_their_organisation(world: World, issuer: TestIssuer) -> None:
    """``POST /members {"user_id"}`` with the id of someone who uses TaskFlow in another tenant
    answers 404 and reveals neither their name nor their handle; ``agent_id`` = their worker id
    is "Agent not found" (404) too. People of the owner's organisation are added: those who
    used it in this tenant, and those the SSO lists as organisation members."""
    tenant = f"org-o-{uuid.uuid4().hex[:6]}"
    owner, colleague = new_user(issuer, tenant), new_user(issuer, tenant)
    stranger = new_user(issuer, f"org-s-{uuid.uuid4().hex[:6]}", name="Stella Stranger")
    roaming = new_user(issuer, f"org-r-{uuid.uuid4().hex[:6]}", name="Rita Roaming")
    issuer.org_members[tenant] = [
        {"userId": u.sub, "email": u.email, "name": u.sub, "role": "member"}
        for u in (owner, colleague, roaming)
    ]
    for user in (owner, colleague, stranger, roaming):  # each has used TaskFlow once
        with user.client(world.tasks_url) as api:
            assert api.get("/api/projects").status_code == 200
    with admin_connection(world.stack.db_url) as conn:
        row = conn.execute(
            "SELECT id, handle FROM tasks.workers WHERE user_id = %s", (stranger.sub,)
        )
        stranger_worker, stranger_handle = row.fetchone() or (None, None)
    assert stranger_worker is not None
    with owner.client(world.tasks_url) as api:
        project = create_project(api)
        members = f"/api/projects/{project['id']}/members"
        before = api.get(members).json()
        events = world.outbox_count()
        for body, message in (
            ({"user_id": stranger.sub}, "User not found"),
            ({"agent_id": stranger_worker}, "Agent not found"),
        ):
            refused = api.post(members, json=body)
            assert refused.status_code == 404, refused.text
            assert refused.json()["error"] == message
            for secret in ("Stella", "Stranger", stranger_handle, stranger.email):
                assert secret not in refused.text
        assert api.get(members).json() == before
        assert world.outbox_count() == events  # nothing was written
        for user in (colleague, roaming):
            added = api.post(members, json={"user_id": user.sub})
            assert added.status_code == 201, added.text
        placeholder = api.post(members, json={"user_id": f"never-seen-{uuid.uuid4().hex[:6]}"})
        assert placeholder.status_code == 201, placeholder.text
        assert placeholder.json()["name"].startswith("User never-se")
