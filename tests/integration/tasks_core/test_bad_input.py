"""Bad input on every write endpoint of projects, members and agents: a 4xx with a message,
and the database exactly as before (no row, no outbox event, no idempotency record)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Database, User

LONG = "x" * 201
NUL = "a\x00b"  # PostgreSQL text cannot hold U+0000: refused at validation, never a 500


def _cases(pid: int, mid: int, aid: int) -> list[tuple[str, str, str, Any, int]]:
    """(case, method, path, body or raw bytes, expected status)."""
    projects = "/api/projects"
    project = f"/api/projects/{pid}"
    members = f"/api/projects/{pid}/members"
    agents = "/api/workers/agents"
    agent = f"/api/workers/agents/{aid}"
    good_agent = {"handle": "@ok", "name": "Ok", "agent_type": "claude"}
    return [
        # POST /api/projects
        (
            "project unknown field",
            "POST",
            projects,
            {"slug": "a", "name": "A", "owner_id": "x"},
            422,
        ),
        ("project wrong type", "POST", projects, {"slug": "a", "name": 5}, 422),
        ("project over-long name", "POST", projects, {"slug": "a", "name": LONG}, 422),
        ("project over-long slug", "POST", projects, {"slug": "a" * 101, "name": "A"}, 422),
        ("project empty name", "POST", projects, {"slug": "a", "name": ""}, 422),
        ("project blank name", "POST", projects, {"slug": "a", "name": "   "}, 422),
        ("project bad slug", "POST", projects, {"slug": "Not Ok", "name": "A"}, 422),
        ("project missing slug", "POST", projects, {"name": "A"}, 422),
        ("project malformed json", "POST", projects, b'{"slug": "a",', 422),
        ("project array body", "POST", projects, [1, 2], 422),
        ("project no body", "POST", projects, b"", 422),
        (
            "project huge description",
            "POST",
            projects,
            {"slug": "a", "name": "A", "description": "d" * 2001},
            422,
        ),
        ("project NUL name", "POST", projects, {"slug": "a", "name": NUL}, 422),
        ("project NUL slug", "POST", projects, {"slug": NUL, "name": "A"}, 422),
        # PUT /api/projects/{id}
        ("update NUL description", "PUT", project, {"description": NUL}, 422),
        ("update unknown field", "PUT", project, {"is_default": False}, 422),
        ("update wrong type", "PUT", project, {"name": ["x"]}, 422),
        ("update over-long", "PUT", project, {"name": LONG}, 422),
        ("update empty name", "PUT", project, {"name": ""}, 422),
        ("update malformed json", "PUT", project, b"{name", 422),
        ("update non-integer id", "PUT", "/api/projects/abc", {"name": "A"}, 422),
        ("update huge id", "PUT", "/api/projects/99999999999999999999", {"name": "A"}, 422),
        # DELETE /api/projects/{id}
        ("delete non-integer id", "DELETE", "/api/projects/1.5", None, 422),
        ("delete bad force", "DELETE", f"{project}?force=maybe", None, 422),
        # POST /api/projects/{id}/members
        ("member unknown field", "POST", members, {"user_id": "u", "role": "owner"}, 422),
        ("member wrong type", "POST", members, {"agent_id": "12"}, 422),
        ("member bool id", "POST", members, {"agent_id": True}, 422),
        ("member over-long", "POST", members, {"user_id": "u" * 256}, 422),
        ("member empty", "POST", members, {"user_id": ""}, 400),
        ("member negative id", "POST", members, {"agent_id": -3}, 422),
        ("member NUL user", "POST", members, {"user_id": NUL}, 422),
        ("member fractional id", "POST", members, {"agent_id": 1.5}, 422),
        ("member malformed json", "POST", members, b"nope", 422),
        ("member non-integer project", "POST", "/api/projects/x/members", {"user_id": "u"}, 422),
        # DELETE /api/projects/{id}/members/{mid}
        ("remove non-integer member", "DELETE", f"{members}/abc", None, 422),
        ("remove zero member", "DELETE", f"{members}/0", None, 422),
        # POST /api/workers/agents
        ("agent unknown field", "POST", agents, {**good_agent, "tenant_id": "other"}, 422),
        ("agent wrong type", "POST", agents, {**good_agent, "capabilities": "py"}, 422),
        ("agent bad agent_type", "POST", agents, {**good_agent, "agent_type": "gpt"}, 422),
        ("agent over-long handle", "POST", agents, {**good_agent, "handle": "@" + "a" * 50}, 422),
        ("agent bad handle", "POST", agents, {**good_agent, "handle": "no-at"}, 422),
        ("agent empty name", "POST", agents, {**good_agent, "name": ""}, 422),
        ("agent too many caps", "POST", agents, {**good_agent, "capabilities": ["c"] * 51}, 422),
        ("agent malformed json", "POST", agents, b"[", 422),
        ("agent NUL name", "POST", agents, {**good_agent, "name": NUL}, 422),
        ("agent NUL handle", "POST", agents, {**good_agent, "handle": "@a\x00"}, 422),
        ("agent NUL capability", "POST", agents, {**good_agent, "capabilities": [NUL]}, 422),
        # PUT /api/workers/agents/{id}
        ("agent update unknown", "PUT", agent, {"handle": "@new"}, 422),
        ("agent update over-long", "PUT", agent, {"name": LONG}, 422),
        ("agent update wrong type", "PUT", agent, {"capabilities": [1]}, 422),
        ("agent update NUL capability", "PUT", agent, {"capabilities": ["ok", NUL]}, 422),
        ("agent update non-integer id", "PUT", "/api/workers/agents/ab", {"name": "A"}, 422),
        # DELETE /api/workers/agents/{id}
        ("agent delete non-integer id", "DELETE", "/api/workers/agents/-1", None, 422),
    ]


@pytest.fixture
def world(make_user, db: Database) -> tuple[User, int, int, int]:
    alice: User = make_user("alice-bad-input")
    pid = alice.post("/api/projects", json={"slug": "target", "name": "Target"}).json()["id"]
    aid = alice.post(
        "/api/workers/agents", json={"handle": "@target", "name": "T", "agent_type": "custom"}
    ).json()["id"]
    mid = alice.post(f"/api/projects/{pid}/members", json={"agent_id": aid}).json()["id"]
    return alice, pid, mid, aid


def test_bad_input_table(world: tuple[User, int, int, int], db: Database) -> None:
    alice, pid, mid, aid = world
    before = db.snapshot()
    failures = []
    for case, method, path, body, expected in _cases(pid, mid, aid):
        kwargs: dict[str, Any] = {"headers": {"Idempotency-Key": f"key-{case}"}}
        if isinstance(body, bytes):
            kwargs["content"] = body
            kwargs["headers"]["Content-Type"] = "application/json"
        elif body is not None:
            kwargs["json"] = body
        r = alice.http.request(method, path, **kwargs)
        error = (
            r.json().get("error")
            if r.headers.get("content-type", "").startswith("application/json")
            else None
        )
        if r.status_code != expected or not error:
            failures.append((case, r.status_code, r.text[:200]))
    assert failures == []
    assert db.snapshot() == before


def test_validation_detail_names_each_field(world: tuple[User, int, int, int]) -> None:
    alice = world[0]
    r = alice.post("/api/projects", json={"slug": "BAD", "name": "", "extra": 1})
    assert r.status_code == 422
    locs = {tuple(item["loc"]) for item in r.json()["detail"]}
    assert {("body", "slug"), ("body", "name"), ("body", "extra")} <= locs


def test_negative_or_huge_limits_are_422(world: tuple[User, int, int, int]) -> None:
    alice = world[0]
    for path in ("/api/projects", "/api/workers/agents"):
        for limit in ("-5", "0", "101", "1000000000000"):
            assert alice.get(path, params={"limit": limit}).status_code == 422, (path, limit)


def test_nul_is_refused_naming_the_field(world: tuple[User, int, int, int]) -> None:
    alice, pid = world[0], world[1]
    r = alice.post("/api/projects", json={"slug": "nul", "name": NUL})
    assert r.status_code == 422
    assert {"loc": ["body", "name"], "msg": "Must not contain NUL characters."} in [
        {"loc": item["loc"], "msg": item["msg"]} for item in r.json()["detail"]
    ]
    r = alice.get("/api/members/search", params={"q": NUL, "project_id": pid})
    assert r.status_code == 422
    assert ["query", "q"] in [item["loc"] for item in r.json()["detail"]]
    # An unknown query parameter is still ignored, whatever it holds.
    assert alice.get("/api/projects", params={"other": NUL}).status_code == 200


def test_an_integral_float_is_an_integer(world: tuple[User, int, int, int]) -> None:
    alice, pid = world[0], world[1]
    aid = alice.post(
        "/api/workers/agents", json={"handle": "@floaty", "name": "F", "agent_type": "qwen"}
    ).json()["id"]
    r = alice.post(f"/api/projects/{pid}/members", json={"agent_id": float(aid)})
    assert r.status_code == 201, r.text
    assert r.json()["worker_id"] == aid


def test_malformed_idempotency_keys_are_422_as_documented(
    world: tuple[User, int, int, int], db: Database
) -> None:
    alice = world[0]
    before = db.snapshot()
    keys: tuple[str | bytes, ...] = ("k" * 256, "café".encode(), "tab\there")
    for key in keys:
        r = alice.post(
            "/api/projects",
            json={"slug": "keyed", "name": "K"},
            headers={"Idempotency-Key": key},
        )
        assert r.status_code == 422, (key, r.text)
    assert db.snapshot() == before
    ok = alice.post(
        "/api/projects",
        json={"slug": "keyed", "name": "K"},
        headers={"Idempotency-Key": "a key with spaces ~!"},
    )
    assert ok.status_code == 201
