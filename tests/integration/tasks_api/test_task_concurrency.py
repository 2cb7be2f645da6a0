"""Several replicas and racing requests: each recurring task spawns exactly one successor."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from tests.conftest import StartService
from tests.integration.tasks_api.conftest import MakeUser
from tests.support.issuer import TestIssuer


def test_two_replicas_spawn_each_due_task_once(
    start_service: StartService, db_url: str, issuer: TestIssuer, db: psycopg.Connection[Any]
) -> None:
    env = {"DATABASE_URL": db_url, "SSO_URL": issuer.url, "SCHEDULER_INTERVAL": "0.1"}
    first = start_service("tasks", **env)
    start_service("tasks", **env)
    token = issuer.token(f"user-{uuid.uuid4().hex[:8]}", tenant_id="tenant-r")
    with httpx.Client(base_url=first.url, headers={"Authorization": f"Bearer {token}"}) as api:
        pid = next(p["id"] for p in api.get("/api/projects").json() if p["is_default"])
        due = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
        roots = []
        for i in range(20):
            resp = api.post(
                f"/api/projects/{pid}/tasks",
                json={
                    "title": f"r{i}",
                    "recurrence_pattern": "daily",
                    "recurrence_trigger": "on_due_date",
                    "due_date": due,
                },
            )
            assert resp.status_code == 201, resp.text
            roots.append(resp.json()["id"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        left = db.execute(
            "SELECT count(*) AS n FROM tasks.tasks WHERE id = ANY(%s) AND NOT has_spawned_next",
            (roots,),
        ).fetchone()
        if left and left["n"] == 0:
            break
        time.sleep(0.2)
    time.sleep(0.5)
    spawned = db.execute(
        "SELECT recurring_root_id, count(*) AS n FROM tasks.tasks"
        " WHERE recurring_root_id = ANY(%s) GROUP BY recurring_root_id",
        (roots,),
    ).fetchall()
    assert sorted(r["recurring_root_id"] for r in spawned) == sorted(roots)
    assert all(r["n"] == 1 for r in spawned)
    events = db.execute(
        "SELECT count(*) AS n FROM tasks.outbox WHERE payload->>'action' = 'spawned_recurring'"
    ).fetchone()
    assert events is not None and events["n"] == 20
    flagged = db.execute(
        "SELECT count(DISTINCT payload->>'entity_id') AS n FROM tasks.outbox"
        " WHERE payload->>'action' = 'updated' AND payload->>'actor_type' = 'system'"
    ).fetchone()
    assert flagged is not None and flagged["n"] == 20


def test_racing_completions_spawn_once(make_user: MakeUser) -> None:
    alice = make_user()
    pid = alice.default_project
    tid = alice.task(pid, recurrence_pattern="daily")["id"]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(
            pool.map(
                lambda _: alice.patch(f"/api/tasks/{tid}/status", {"status": "completed"}),
                range(6),
            )
        )
    assert sorted(r.status_code for r in results) == [200] + [400] * 5
    assert len(alice.get(f"/api/projects/{pid}/tasks").json()) == 2


def test_racing_reparents_cannot_make_a_cycle(make_user: MakeUser) -> None:
    alice = make_user()
    pid = alice.default_project
    for _ in range(3):
        a = alice.task(pid, title="A")["id"]
        b = alice.task(pid, title="B")["id"]
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(
                pool.map(
                    lambda pair: alice.put(f"/api/tasks/{pair[0]}", {"parent_task_id": pair[1]}),
                    [(a, b), (b, a)],
                )
            )
        assert sorted(r.status_code for r in results) == [200, 400]
        loser = next(r for r in results if r.status_code == 400)
        assert loser.json()["error"] == "Circular reference detected"


def test_racing_changes_to_one_task_lose_nothing(
    make_user: MakeUser, db: psycopg.Connection[Any]
) -> None:
    """Concurrent progress updates on one task: every one is applied, each audit event's
    "before" is the value the previous change left, and the task ends at the last "after"."""
    alice = make_user()
    tid = alice.task(alice.default_project)["id"]
    assert alice.patch(f"/api/tasks/{tid}/status", {"status": "in_progress"}).status_code == 200
    percents = list(range(1, 41))
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(lambda p: alice.patch(f"/api/tasks/{tid}/progress", {"percent": p}), percents)
        )
    assert [r.status_code for r in results] == [200] * len(percents)
    assert sorted(r.json()["progress_percent"] for r in results) == percents
    events = db.execute(
        "SELECT payload->'details' AS details FROM tasks.outbox"
        " WHERE payload->>'entity_type' = 'task' AND (payload->>'entity_id')::bigint = %s"
        " AND payload->>'action' = 'progress_updated' ORDER BY id",
        (tid,),
    ).fetchall()
    assert len(events) == len(percents)
    value = 0
    for event in events:
        assert event["details"]["before"] == value, events
        value = event["details"]["after"]
    assert sorted(e["details"]["after"] for e in events) == percents
    assert alice.get(f"/api/tasks/{tid}").json()["progress_percent"] == value
