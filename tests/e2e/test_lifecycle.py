"""A task's whole life through the real gateway, with real tokens: a project, a member, a task
assigned, started, progressed, reviewed, rejected, reviewed again and approved, a subtask, and
the audit trail read back through the gateway (delivered by the outbox to the audit service)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

AUDIT_WAIT_S = (
    60.0  # upper bound for the outbox relay to deliver on a busy machine; polls end sooner
)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url.path} -> "
        f"{response.status_code}: {response.text}"
    )
    return response.json()


def wait_for_audit(
    client: httpx.Client, path: str, wanted: Counter[str], stack: Stack
) -> list[dict[str, Any]]:
    """Poll the audit view until it holds at least ``wanted`` actions (bounded)."""
    deadline = time.monotonic() + AUDIT_WAIT_S
    entries: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = client.get(path, params={"limit": 100})
        if response.status_code == 200:
            entries = response.json()
            have = Counter(e["action"] for e in entries)
            if all(have[action] >= n for action, n in wanted.items()):
                return entries
        time.sleep(0.25)
    raise AssertionError(
        f"{path} never held {dict(wanted)}; last: {[e.get('action') for e in entries]}\n"
        + stack.diagnostics()[-4000:]
    )


def test_full_task_lifecycle_with_audit_trail(stack: Stack) -> None:
    owner_sub = f"owner-{uuid.uuid4().hex[:8]}"
    mate_sub = f"mate-{uuid.uuid4().hex[:8]}"
    owner = stack.client(stack.token(owner_sub, name="Olivia Owner"))
    mate = stack.client(stack.token(mate_sub, name="Max Mate"))
    with owner, mate:
        # The teammate has logged in once, so a worker exists for them.
        ok(mate.get("/api/projects"))
        project = ok(
            owner.post(
                "/api/projects",
                json={"slug": f"life-{uuid.uuid4().hex[:8]}", "name": "Lifecycle"},
            ),
            201,
        )
        pid = project["id"]
        member = ok(owner.post(f"/api/projects/{pid}/members", json={"user_id": mate_sub}), 201)
        assert member["role"] == "member"
        members = ok(owner.get(f"/api/projects/{pid}/members"))
        assert {m["worker_id"] for m in members} >= {member["worker_id"]}

        task = ok(
            owner.post(
                f"/api/projects/{pid}/tasks",
                json={"title": "Ship the gateway", "priority": "high", "tags": ["e2e"]},
            ),
            201,
        )
        tid = task["id"]
        assert task["status"] == "pending" and task["progress_percent"] == 0

        assigned = ok(
            owner.patch(f"/api/tasks/{tid}/assign", json={"assignee_id": member["worker_id"]})
        )
        assert assigned["assignee_id"] == member["worker_id"]

        started = ok(mate.patch(f"/api/tasks/{tid}/status", json={"status": "in_progress"}))
        assert started["status"] == "in_progress" and started["started_at"]

        progressed = ok(
            mate.patch(f"/api/tasks/{tid}/progress", json={"percent": 60, "note": "half way"})
        )
        assert progressed["progress_percent"] == 60

        in_review = ok(mate.patch(f"/api/tasks/{tid}/status", json={"status": "review"}))
        assert in_review["status"] == "review"

        rejected = ok(owner.post(f"/api/tasks/{tid}/reject", json={"reason": "needs tests"}))
        assert rejected["status"] == "in_progress" and rejected["progress_percent"] == 60

        ok(mate.patch(f"/api/tasks/{tid}/progress", json={"percent": 95, "note": "tests added"}))
        ok(mate.patch(f"/api/tasks/{tid}/status", json={"status": "review"}))

        approved = ok(owner.post(f"/api/tasks/{tid}/approve"))
        assert approved["status"] == "completed"
        assert approved["progress_percent"] == 100 and approved["completed_at"]

        subtask = ok(owner.post(f"/api/tasks/{tid}/subtasks", json={"title": "Write docs"}), 201)
        assert subtask["parent_task_id"] == tid and subtask["project_id"] == pid
        parent = ok(owner.get(f"/api/tasks/{tid}"))
        assert [s["id"] for s in parent["subtasks"]] == [subtask["id"]]
        listed = ok(owner.get(f"/api/projects/{pid}/tasks"))
        assert {t["id"] for t in listed} == {tid, subtask["id"]}

        # The audit trail, read back through the gateway from the audit service.
        wanted = Counter(
            {
                "created": 1,
                "assigned": 1,
                "status_changed": 3,
                "progress_updated": 2,
                "rejected": 1,
                "approved": 1,
            }
        )
        trail = wait_for_audit(owner, f"/api/tasks/{tid}/audit", wanted, stack)
        assert all(e["entity_type"] == "task" and e["entity_id"] == tid for e in trail)
        by_action = {e["action"]: e for e in trail}
        assert by_action["rejected"]["details"]["reason"] == "needs tests"
        assert by_action["assigned"]["details"]["after"] == member["worker_id"]
        assert by_action["approved"]["actor_id"] != by_action["progress_updated"]["actor_id"]
        assert {e["actor_type"] for e in trail} == {"human"}
        # The teammate, a member, may read it too.
        ok(mate.get(f"/api/tasks/{tid}/audit"))

        project_trail = wait_for_audit(
            owner,
            f"/api/projects/{pid}/audit",
            Counter({"created": 3, "member_added": 1, "approved": 1}),
            stack,
        )
        assert {"project", "task"} <= {e["entity_type"] for e in project_trail}
        # Searching and verifying the project's hash-chained history, also through the gateway.
        rejections = ok(owner.get("/api/audit", params={"project_id": pid, "action": "rejected"}))
        assert [e["entity_id"] for e in rejections] == [tid]
        chain = ok(owner.get("/api/audit/verify", params={"project_id": pid}))
        assert chain["ok"] is True and chain["checked"] >= len(project_trail)

    # Someone outside the project cannot read its history through the gateway.
    with stack.client(stack.token(f"stranger-{uuid.uuid4().hex[:6]}")) as stranger:
        denied = stranger.get(f"/api/tasks/{tid}/audit")
        assert denied.status_code in (403, 404), denied.text
