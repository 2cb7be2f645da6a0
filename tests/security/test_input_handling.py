"""Hostile strings reach validation, never the database driver: a NUL byte (which PostgreSQL
text cannot hold) in any body field or query parameter is a 422 naming the field, not a 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.conftest import World

NUL = "a\x00b"


def query_cases(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    pid = world.project["id"]
    return [
        ("tasks", f"/api/projects/{pid}/tasks", {"search": NUL}),
        ("tasks", f"/api/projects/{pid}/tasks", {"tags": NUL}),
        ("tasks", "/api/members/search", {"q": NUL}),
        ("audit", "/api/audit", {"entity_type": NUL}),
        ("audit", "/api/audit", {"action": NUL}),
    ]


def body_cases(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    pid, tid, aid = world.project["id"], world.task["id"], world.agent["id"]
    return [
        ("POST", "/api/projects", {"slug": "nul-byte", "name": NUL}),
        ("PUT", f"/api/projects/{pid}", {"description": NUL}),
        ("POST", f"/api/projects/{pid}/tasks", {"title": NUL}),
        ("POST", f"/api/projects/{pid}/tasks", {"title": "ok", "tags": [NUL]}),
        ("PUT", f"/api/tasks/{tid}", {"description": NUL}),
        ("POST", f"/api/tasks/{tid}/subtasks", {"title": NUL}),
        ("POST", f"/api/tasks/{tid}/reject", {"reason": NUL}),
        ("POST", f"/api/projects/{pid}/members", {"user_id": NUL}),
        ("POST", "/api/workers/agents", {"handle": "@nul", "name": NUL, "agent_type": "claude"}),
        ("PUT", f"/api/workers/agents/{aid}", {"capabilities": [NUL]}),
    ]


def test_nul_bytes_in_query_parameters(world: World) -> None:
    failures = []
    for service, path, params in query_cases(world):
        with world.alice.client(world.stack.url(service)) as api:
            resp = api.get(path, params=params)
        if resp.status_code != 422:
            failures.append((path, params, resp.status_code, resp.text[:160]))
    assert not failures, failures


@pytest.mark.parametrize("index", range(10))
def test_nul_bytes_in_bodies(world: World, index: int) -> None:
    method, path, body = body_cases(world)[index]
    events = world.outbox_count()
    with world.alice.client(world.tasks_url) as api:
        resp = api.request(method, path, json=body)
    assert resp.status_code == 422, (method, path, resp.status_code, resp.text[:200])
    assert world.outbox_count() == events
