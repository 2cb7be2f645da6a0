"""Reading history: deleted tasks and force-deleted projects stay readable, every actor type
serialises, filters and paging behave, and a task not yet in the trail is not a 404."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from taskflow_tasks.outbox.events import Actor, record_event

from .conftest import AuditStack, MakeUser, User, wait_delivered


@pytest.fixture
def running(stack: AuditStack) -> AuditStack:
    stack.start_audit()
    stack.start_tasks()
    return stack


def actions(rows: list[dict[str, Any]]) -> list[str]:
    return [row["action"] for row in rows]


def test_deleted_task_and_force_deleted_project_stay_readable(
    running: AuditStack, make_user: MakeUser, db: psycopg.Connection[dict[str, Any]]
) -> None:
    alice, bob = make_user(), make_user()
    project = alice.new_project()
    alice.add_member(project, bob)
    doomed = alice.new_task(project, "Doomed")
    kept = alice.new_task(project, "Kept until the project goes")
    moved = alice.tasks.patch(f"/api/tasks/{doomed}/status", json={"status": "in_progress"})
    assert moved.status_code == 200, moved.text
    assert alice.tasks.delete(f"/api/tasks/{doomed}").status_code == 200
    assert alice.tasks.get(f"/api/tasks/{doomed}").status_code == 404
    wait_delivered(db)

    task_history = alice.audit.get(f"/api/tasks/{doomed}/audit")
    assert task_history.status_code == 200, task_history.text
    assert actions(task_history.json()) == ["deleted", "status_changed", "created"]
    assert task_history.json()[1]["details"]["before"] == "pending"
    project_history = alice.all_pages(f"/api/projects/{project}/audit")
    assert {"deleted", "status_changed"} <= set(
        actions([r for r in project_history if r["entity_id"] == doomed])
    )

    gone = alice.tasks.delete(f"/api/projects/{project}", params={"force": "true"})
    assert gone.status_code == 200, gone.text
    wait_delivered(db)
    for reader in (alice, bob):  # the owner and a member, after the project is gone
        after = reader.all_pages(f"/api/projects/{project}/audit")
        own = [r for r in after if r["entity_type"] == "project"]
        assert own[0]["action"] == "deleted" and own[0]["details"]["force"] is True
        assert {r["entity_id"] for r in after if r["entity_type"] == "task"} >= {doomed, kept}
        kept_history = reader.audit.get(f"/api/tasks/{kept}/audit")
        assert kept_history.status_code == 200
        assert actions(kept_history.json())[-1] == "created"
        assert kept_history.json()[0]["action"] == "deleted"


def _record(db_url: str, project: int, tenant: str, events: list[tuple[Actor, str]]) -> None:
    async def write() -> None:
        async with (
            await psycopg.AsyncConnection.connect(db_url, prepare_threshold=None) as conn,
            conn.transaction(),
        ):
            for actor, action in events:
                await record_event(
                    conn,
                    tenant_id=tenant,
                    project_id=project,
                    entity_type="project",
                    entity_id=project,
                    action=action,
                    actor=actor,
                    details={"note": f"by {actor.actor_type}"},
                    occurred_at=datetime.now(UTC),
                )

    asyncio.run(write())


def test_human_agent_and_system_actors_all_serialise(
    running: AuditStack, make_user: MakeUser, db: psycopg.Connection[dict[str, Any]], db_url: str
) -> None:
    alice = make_user()
    project = alice.new_project()
    _record(
        db_url,
        project,
        alice.tenant,
        [
            (Actor(worker_id=77, handle="@claude-bot", actor_type="agent"), "agent_note"),
            (Actor(worker_id=None, handle=None, actor_type="system"), "spawned_recurring"),
        ],
    )
    wait_delivered(db)
    rows = alice.audit.get(f"/api/projects/{project}/audit", params={"order": "asc"}).json()
    by_type = {row["actor_type"]: row for row in rows}
    assert set(by_type) == {"human", "agent", "system"}
    assert by_type["agent"]["actor_handle"] == "@claude-bot"
    assert by_type["system"]["actor_id"] is None
    assert set(rows[0]) >= {
        "id",
        "entity_type",
        "entity_id",
        "action",
        "actor_id",
        "actor_handle",
        "actor_type",
        "details",
        "created_at",
    }
    assert datetime.fromisoformat(rows[0]["created_at"]).utcoffset() == timedelta(0)


def test_search_filters_and_scope(
    running: AuditStack, make_user: MakeUser, db: psycopg.Connection[dict[str, Any]]
) -> None:
    alice, bob = make_user(), make_user()
    mine = alice.new_project()
    theirs = bob.new_project()  # alice may not read it
    task = alice.new_task(mine)
    assert (
        alice.tasks.patch(f"/api/tasks/{task}/status", json={"status": "in_progress"}).status_code
        == 200
    )
    bob.new_task(theirs)
    wait_delivered(db)

    readable = {p["id"] for p in alice.tasks.get("/api/projects").json()}  # mine + Default
    bobs = {p["id"] for p in bob.tasks.get("/api/projects").json()}
    everything = alice.all_pages("/api/audit")
    assert {r["project_id"] for r in everything} == readable | {None}  # None: her worker
    assert not bobs & {r["project_id"] for r in everything}
    assert {r["entity_type"] for r in everything if r["project_id"] is None} == {"worker"}
    only_status = alice.audit.get("/api/audit", params={"action": "status_changed"}).json()
    assert [(r["entity_id"], r["action"]) for r in only_status] == [(task, "status_changed")]
    actor = only_status[0]["actor_id"]
    by_actor = alice.all_pages("/api/audit", actor_id=actor, entity_type="task")
    assert {r["actor_id"] for r in by_actor} == {actor} and len(by_actor) == 2
    created_at = datetime.fromisoformat(only_status[0]["created_at"])
    since = alice.all_pages("/api/audit", since=created_at.isoformat(), project_id=mine)
    assert since[-1]["action"] == "status_changed"
    until = alice.all_pages("/api/audit", until=created_at.isoformat(), project_id=mine)
    assert "status_changed" not in actions(until)
    assert len(since) + len(until) == len(alice.all_pages(f"/api/projects/{mine}/audit"))

    for bad in (
        {"limit": 0},
        {"limit": 101},
        {"offset": -1},
        {"order": "sideways"},
        {"since": "x"},
    ):
        resp = alice.audit.get("/api/audit", params=bad)
        assert resp.status_code == 422, (bad, resp.text)
        assert resp.json()["status_code"] == 422
    for wrong in (
        {"cursor": "garbage"},
        {"since": "2026-01-02T00:00:00", "until": "2026-01-01T00:00:00"},
    ):
        resp = alice.audit.get("/api/audit", params=wrong)
        assert resp.status_code == 400, (wrong, resp.text)


def test_cursor_paging_is_stable_while_entries_are_appended(
    running: AuditStack, make_user: MakeUser, db: psycopg.Connection[dict[str, Any]]
) -> None:
    alice = make_user()
    project = alice.new_project()
    for i in range(7):
        alice.new_task(project, f"T{i}")
    wait_delivered(db)
    first = alice.audit.get(f"/api/projects/{project}/audit", params={"limit": 3})
    cursor = first.headers["X-Next-Cursor"]
    assert "rel=next" in first.headers["Link"].replace('"', "")
    alice.new_task(project, "appended meanwhile")
    wait_delivered(db)
    rest = alice.all_pages(f"/api/projects/{project}/audit", limit=3, cursor=cursor)
    seen = [r["id"] for r in first.json()] + [r["id"] for r in rest]
    assert len(seen) == len(set(seen)) == 8  # project created + 7 tasks, none twice
    assert seen == sorted(seen, reverse=True)
    wrong_order = alice.audit.get(
        f"/api/projects/{project}/audit", params={"cursor": cursor, "order": "asc"}
    )
    assert wrong_order.status_code == 400
    assert "order=desc" in wrong_order.json()["error"]


def test_task_not_yet_in_the_trail(
    stack: AuditStack, make_user: MakeUser, db: psycopg.Connection[dict[str, Any]]
) -> None:
    """A live task whose events are still in the outbox: an empty history, not a 404."""
    stack.start_audit()
    stack.start_tasks(AUDIT_URL="http://127.0.0.1:9")  # its relay cannot deliver
    alice: User = make_user()
    project = alice.new_project()
    task = alice.new_task(project)
    resp = alice.audit.get(f"/api/tasks/{task}/audit")
    assert resp.status_code == 200, resp.text
    assert resp.json() == []
    assert alice.audit.get(f"/api/tasks/{task + 1000}/audit").status_code == 404
    outsider = make_user(tenant="tenant-b")
    assert outsider.audit.get(f"/api/tasks/{task}/audit").status_code == 404
    neighbour = make_user()
    assert neighbour.audit.get(f"/api/tasks/{task}/audit").status_code == 403


def test_a_task_deleted_before_its_events_arrive_is_not_a_404(
    stack: AuditStack, make_user: MakeUser
) -> None:
    """Create, change and delete a task while nothing has reached the audit trail yet: its
    history is readable at once (empty until the relay delivers), and still hidden from other
    tenants and non-members. Both ways a task is deleted: on its own and with its project."""
    stack.start_audit()
    stack.start_tasks(AUDIT_URL="http://127.0.0.1:9")  # its relay cannot deliver
    alice: User = make_user()
    project = alice.new_project()
    task = alice.new_task(project)
    moved = alice.tasks.patch(f"/api/tasks/{task}/status", json={"status": "in_progress"})
    assert moved.status_code == 200, moved.text
    assert alice.tasks.delete(f"/api/tasks/{task}").status_code == 200
    other = make_user(tenant="tenant-b")
    neighbour = make_user()
    for reader, expected in ((alice, 200), (other, 404), (neighbour, 403)):
        resp = reader.audit.get(f"/api/tasks/{task}/audit")
        assert resp.status_code == expected, resp.text
    assert alice.audit.get(f"/api/tasks/{task}/audit").json() == []

    with_project = alice.new_task(project)
    gone = alice.tasks.delete(f"/api/projects/{project}", params={"force": "true"})
    assert gone.status_code == 200, gone.text
    resp = alice.audit.get(f"/api/tasks/{with_project}/audit")
    assert resp.status_code == 200, resp.text


def test_an_agent_writes_and_reads_its_project_history(
    running: AuditStack, make_user: MakeUser, db: psycopg.Connection[dict[str, Any]]
) -> None:
    owner = make_user()
    name = f"Claude {uuid.uuid4().hex[:6]}"
    agent = make_user(actor_type="agent", client_id=f"key-{uuid.uuid4().hex[:8]}", client_name=name)
    project = owner.new_project()
    assert agent.tasks.get("/api/workers/agents").status_code == 200  # the agent's first call
    listed = owner.tasks.get("/api/workers/agents", params={"limit": 100}).json()
    agent_id = next(a["id"] for a in listed if a["name"] == name)
    added = owner.tasks.post(f"/api/projects/{project}/members", json={"agent_id": agent_id})
    assert added.status_code == 201, added.text
    task = agent.new_task(project, "Written by an agent")
    wait_delivered(db)

    rows = agent.audit.get(f"/api/tasks/{task}/audit").json()
    assert [(r["action"], r["actor_type"], r["actor_id"]) for r in rows] == [
        ("created", "agent", agent_id)
    ]
    assert rows[0]["actor_handle"].startswith("@")
    assert rows[0]["details"]["client_name"] == name
    assert agent.audit.get(f"/api/projects/{project}/audit").status_code == 200
    assert agent.audit.get("/api/audit/verify", params={"project_id": project}).status_code == 403
