"""Every audit endpoint: owner and member read; a non-member of the same tenant gets 403; a
user of another tenant (or anyone, for an unknown id) gets 404; no token gets 401. The
ingestion endpoint takes only the tasks service's credential."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
from taskflow_core.auth.service_tokens import ServiceCredentials
from taskflow_core.config import Settings

from .conftest import AuditStack, MakeUser, wait_delivered


def test_access_on_every_audit_endpoint(
    stack: AuditStack, make_user: MakeUser, db: psycopg.Connection[dict[str, Any]]
) -> None:
    stack.start_audit()
    stack.start_tasks()
    owner, member, neighbour = make_user(), make_user(), make_user()
    foreigner = make_user(tenant="tenant-b")
    project = owner.new_project()
    owner.add_member(project, member)
    task = owner.new_task(project)
    wait_delivered(db)

    reads = [
        (f"/api/tasks/{task}/audit", {}),
        (f"/api/projects/{project}/audit", {}),
        ("/api/audit", {"project_id": project}),
    ]
    for path, params in reads:
        for reader in (owner, member):
            resp = reader.audit.get(path, params=params)
            assert resp.status_code == 200, (path, resp.text)
            assert resp.json(), path
        forbidden = neighbour.audit.get(path, params=params)
        assert forbidden.status_code == 403, (path, forbidden.text)
        assert forbidden.json()["error"] == "Not a member of this project"
        hidden = foreigner.audit.get(path, params=params)
        assert hidden.status_code == 404, (path, hidden.text)
        assert hidden.json()["error"] in ("Task not found", "Project not found")
        anonymous = httpx.get(stack.audit_url + path, params=params)
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")

    verify = "/api/audit/verify"
    assert owner.audit.get(verify, params={"project_id": project}).json()["ok"] is True
    assert member.audit.get(verify, params={"project_id": project}).status_code == 403
    assert neighbour.audit.get(verify, params={"project_id": project}).status_code == 403
    assert foreigner.audit.get(verify, params={"project_id": project}).status_code == 404
    assert httpx.get(stack.audit_url + verify, params={"project_id": project}).status_code == 401

    # Unknown ids look exactly like another tenant's; a search outside one's projects is
    # empty, not an error and not a leak.
    assert owner.audit.get("/api/projects/999999/audit").status_code == 404
    assert owner.audit.get("/api/tasks/999999/audit").status_code == 404
    for outsider in (neighbour, foreigner):
        seen = outsider.all_pages("/api/audit")
        assert project not in {r["project_id"] for r in seen}
        assert task not in {r["entity_id"] for r in seen if r["entity_type"] == "task"}
    assert owner.audit.get("/api/tasks/abc/audit").status_code == 422

    # The tasks service's internal access check answers service credentials only.
    internal = f"/internal/tasks/projects/{project}/access"
    params = {"sub": owner.sub, "tenant_id": owner.tenant}
    assert owner.tasks.get(internal, params=params).status_code == 403
    assert httpx.get(stack.tasks_url + internal, params=params).status_code == 401
    audit_credential = ServiceCredentials(Settings(service_secret=stack.secret), "audit")
    answer = httpx.get(
        stack.tasks_url + internal,
        params=params,
        headers={"Authorization": f"Bearer {audit_credential.token_for('tasks')}"},
    )
    assert answer.json() == {"project_id": project, "access": "owner", "deleted": False}


def test_ingestion_takes_only_the_tasks_service_credential(
    stack: AuditStack, make_user: MakeUser, db: psycopg.Connection[dict[str, Any]]
) -> None:
    stack.start_audit()
    stack.start_tasks()
    user = make_user()
    events = {"events": [{"event_id": "5b7e0c44-7f4e-4f7e-9a55-0d3c6f0f4f11"}]}
    settings = Settings(service_secret=stack.secret)
    url = f"{stack.audit_url}/internal/audit/events"

    def post(token: str | None, body: Any = events) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.post(url, json=body, headers=headers)

    assert post(None).status_code == 401
    assert user.audit.post("/internal/audit/events", json=events).status_code == 403
    other_service = ServiceCredentials(settings, "auth-verifier").token_for("audit")
    assert post(other_service).status_code == 403
    wrong_audience = ServiceCredentials(settings, "tasks").token_for("tasks")
    assert post(wrong_audience).status_code == 401
    stored = db.execute("SELECT count(*) AS n FROM audit.entries").fetchone()
    tasks = ServiceCredentials(settings, "tasks").token_for("audit")
    assert post(tasks, {"events": []}).status_code == 422
    assert post(tasks, ["not", "an", "object"]).status_code == 422
    assert post(tasks, {"events": [], "extra": 1}).status_code == 422
    assert db.execute("SELECT count(*) AS n FROM audit.entries").fetchone() == stored


def test_a_malformed_event_is_rejected_and_the_rest_stored_once(
    stack: AuditStack, db: psycopg.Connection[dict[str, Any]]
) -> None:
    stack.start_audit()
    stack.start_tasks()
    token = ServiceCredentials(Settings(service_secret=stack.secret), "tasks").token_for("audit")

    def event(event_id: str, **changes: Any) -> dict[str, Any]:
        return {
            "event_id": event_id,
            "tenant_id": "tenant-a",
            "project_id": 5,
            "entity_type": "task",
            "entity_id": 50,
            "action": "created",
            "actor_id": 1,
            "actor_handle": "@a",
            "actor_type": "human",
            "details": {"title": "x"},
            "created_at": "2026-02-03T04:05:06.789012+00:00",
            **changes,
        }

    ids = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(1, 4)]
    batch = {
        "events": [
            event(ids[0]),
            event(ids[1], actor_type="robot", entity_id="fifty"),
            event(ids[2], actor_type="system", actor_id=None),
        ]
    }
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{stack.audit_url}/internal/audit/events"
    first = httpx.post(url, json=batch, headers=headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert [r["status"] for r in body["results"]] == ["stored", "rejected", "stored"]
    assert "actor_type" in body["results"][1]["reason"]
    assert "entity_id" in body["results"][1]["reason"]
    assert (body["stored"], body["rejected"], body["duplicates"]) == (2, 1, 0)

    again = httpx.post(url, json=batch, headers=headers).json()
    assert [r["status"] for r in again["results"]] == ["duplicate", "rejected", "duplicate"]
    assert [r["id"] for r in again["results"]] == [r["id"] for r in body["results"]]
    rows = db.execute(
        "SELECT event_id::text AS e FROM audit.entries WHERE entity_id = 50 ORDER BY id"
    ).fetchall()
    assert [r["e"] for r in rows] == [ids[0], ids[2]]
