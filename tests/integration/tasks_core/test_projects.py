"""Projects over real HTTP (reference §1.2) and the fixes: validation, stable order, clearing
the description, ETag/If-Match, Idempotency-Key, audit events."""

from __future__ import annotations

from datetime import datetime

from .conftest import Database, User


def _create(user: User, slug: str, **extra: object) -> dict:
    r = user.post("/api/projects", json={"slug": slug, "name": slug.title(), **extra})
    assert r.status_code == 201, r.text
    return r.json()


def test_create_get_list_update_delete(make_user, db: Database) -> None:
    alice: User = make_user("alice-projects")
    created = _create(alice, "website", description="Marketing site")
    assert set(created) == {
        "id", "slug", "name", "description", "owner_id", "is_default", "tenant_id",
        "member_count", "task_count", "created_at", "updated_at",
    }  # fmt: skip
    assert created["owner_id"] == "alice-projects"
    assert created["tenant_id"] == "tenant-a"
    assert (created["is_default"], created["member_count"], created["task_count"]) == (False, 1, 0)
    assert datetime.fromisoformat(created["created_at"]).utcoffset() is not None

    got = alice.get(f"/api/projects/{created['id']}")
    assert got.status_code == 200
    assert got.json() == created
    assert got.headers["ETag"]

    listed = alice.get("/api/projects").json()
    assert [p["slug"] for p in listed] == ["default-alice-pr", "website"]  # Default first

    duplicate = alice.post("/api/projects", json={"slug": "website", "name": "Again"})
    assert duplicate.status_code == 400
    assert duplicate.json()["error"] == "Project slug 'website' already exists in your organization"

    # absent name: unchanged; explicit null description: cleared (the old API could not)
    updated = alice.put(f"/api/projects/{created['id']}", json={"description": None})
    assert updated.status_code == 200
    assert updated.json()["description"] is None
    assert updated.json()["name"] == "Website"
    renamed = alice.put(f"/api/projects/{created['id']}", json={"name": "Web"}).json()
    assert renamed["name"] == "Web"
    assert renamed["updated_at"] > created["updated_at"]

    deleted = alice.delete(f"/api/projects/{created['id']}")
    assert deleted.status_code == 200
    assert deleted.json() == {"ok": True, "deleted_tasks": 0}
    assert alice.get(f"/api/projects/{created['id']}").status_code == 404
    assert [p["slug"] for p in alice.get("/api/projects").json()] == ["default-alice-pr"]
    # the slug is free again once the project is deleted
    assert _create(alice, "website")["id"] != created["id"]

    events = db.events(entity_type="project", entity_id=created["id"])
    assert [e["action"] for e in events] == ["created", "updated", "updated", "deleted"]
    assert events[0]["details"] == {"slug": "website", "name": "Website", "tenant_id": "tenant-a"}
    assert events[1]["details"] == {
        "description": {"before": "Marketing site", "after": None},
        "tenant_id": "tenant-a",
    }
    assert events[3]["details"] == {
        "slug": "website", "force": False, "task_count": 0, "tenant_id": "tenant-a"
    }  # fmt: skip
    assert all(e["actor_handle"] == "@alice-projects" for e in events)
    assert all(e["actor_type"] == "human" for e in events)


def test_no_op_update_writes_no_event(make_user, db: Database) -> None:
    alice: User = make_user("alice-noop")
    project = _create(alice, "same")
    before = len(db.events())
    r = alice.put(f"/api/projects/{project['id']}", json={"name": "Same", "description": None})
    assert r.status_code == 200
    assert len(db.events()) == before


def test_owner_only_and_default_rules(make_user, db: Database) -> None:
    alice: User = make_user("alice-owner")
    bob: User = make_user("bob-member")
    project = _create(alice, "team")
    bob.get("/api/projects")  # provisions bob
    bob_worker = db.value("SELECT id FROM tasks.workers WHERE user_id = 'bob-member'")
    # add bob by user id; he is a member but not the owner
    assert (
        alice.post(
            f"/api/projects/{project['id']}/members", json={"user_id": "bob-member"}
        ).status_code
        == 201
    )
    assert bob.get(f"/api/projects/{project['id']}").status_code == 200
    put = bob.put(f"/api/projects/{project['id']}", json={"name": "Mine"})
    assert (put.status_code, put.json()["error"]) == (403, "Only project owner can update")
    delete = bob.delete(f"/api/projects/{project['id']}")
    assert (delete.status_code, delete.json()["error"]) == (403, "Only project owner can delete")
    assert bob_worker is not None

    default_id = alice.get("/api/projects").json()[0]["id"]
    refused = alice.delete(f"/api/projects/{default_id}")
    assert (refused.status_code, refused.json()["error"]) == (400, "Cannot delete default project")
    # the Default project may be renamed
    assert alice.put(f"/api/projects/{default_id}", json={"name": "Inbox"}).status_code == 200


def test_delete_with_tasks_needs_force_and_audits_each_task(make_user, db: Database) -> None:
    alice: User = make_user("alice-force")
    project = _create(alice, "doomed")
    ids = []
    for title in ("one", "two"):
        r = alice.post(f"/api/projects/{project['id']}/tasks", json={"title": title})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    sub = alice.post(f"/api/tasks/{ids[0]}/subtasks", json={"title": "child"})
    assert sub.status_code == 201, sub.text
    ids.append(sub.json()["id"])
    assert alice.get(f"/api/projects/{project['id']}").json()["task_count"] == 3

    before = db.snapshot()
    refused = alice.delete(f"/api/projects/{project['id']}")
    assert refused.status_code == 400
    assert refused.json()["error"] == "Project has 3 tasks. Delete tasks first or use force=true"
    assert db.snapshot() == before

    forced = alice.delete(f"/api/projects/{project['id']}", params={"force": "true"})
    assert forced.status_code == 200
    assert forced.json() == {"ok": True, "deleted_tasks": 3}
    assert db.value("SELECT count(*) FROM tasks.tasks WHERE project_id = %s", (project["id"],)) == 0
    for task_id in ids:
        events = db.events(entity_type="task", entity_id=task_id, action="deleted")
        assert len(events) == 1
        assert events[0]["details"]["reason"] == "project_deleted"
        assert events[0]["project_id"] == project["id"]
    deleted = db.events(entity_type="project", entity_id=project["id"], action="deleted")
    assert [e["details"]["task_count"] for e in deleted] == [3]
    assert deleted[0]["details"]["force"] is True
    # soft-deleted: kept for the audit trail, invisible to the API
    assert db.value(
        "SELECT deleted_at IS NOT NULL FROM tasks.projects WHERE id = %s", (project["id"],)
    )
    assert alice.get(f"/api/projects/{project['id']}/members").status_code == 404


def test_list_paging_is_stable_and_validated(make_user) -> None:
    alice: User = make_user("alice-paging")
    for n in range(5):
        _create(alice, f"p{n}")
    everything = alice.get("/api/projects", params={"limit": 100}).json()
    assert [p["slug"] for p in everything] == ["default-alice-pa", "p0", "p1", "p2", "p3", "p4"]
    pages = [alice.get("/api/projects", params={"limit": 2, "offset": o}).json() for o in (0, 2, 4)]
    assert [p["id"] for page in pages for p in page] == [p["id"] for p in everything]
    for params in ({"limit": -1}, {"limit": 0}, {"limit": 101}, {"limit": "x"}, {"offset": -1}):
        r = alice.get("/api/projects", params=params)
        assert r.status_code == 422, params
        assert r.json()["detail"][0]["loc"][0] == "query"


def test_if_match_stale_is_412(make_user, db: Database) -> None:
    alice: User = make_user("alice-etag")
    project = _create(alice, "etag")
    first = alice.get(f"/api/projects/{project['id']}")
    tag = first.headers["ETag"]
    ok = alice.put(f"/api/projects/{project['id']}", json={"name": "V2"}, headers={"If-Match": tag})
    assert ok.status_code == 200
    new_tag = ok.headers["ETag"]
    assert new_tag != tag
    before = db.snapshot()
    stale = alice.put(
        f"/api/projects/{project['id']}", json={"name": "V3"}, headers={"If-Match": tag}
    )
    assert stale.status_code == 412
    assert stale.json()["status_code"] == 412
    stale_delete = alice.delete(f"/api/projects/{project['id']}", headers={"If-Match": tag})
    assert stale_delete.status_code == 412
    assert db.snapshot() == before
    # no If-Match: last write wins, as for old clients
    assert alice.put(f"/api/projects/{project['id']}", json={"name": "V4"}).status_code == 200
    fresh = alice.get(f"/api/projects/{project['id']}").headers["ETag"]
    done = alice.delete(f"/api/projects/{project['id']}", headers={"If-Match": fresh})
    assert done.status_code == 200


def test_idempotency_key_replays_and_writes_once(make_user, db: Database) -> None:
    alice: User = make_user("alice-idem")
    alice.get("/api/projects")
    body = {"slug": "once", "name": "Once"}
    headers = {"Idempotency-Key": "create-once-1"}
    first = alice.post("/api/projects", json=body, headers=headers)
    second = alice.post("/api/projects", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.headers["ETag"] == first.headers["ETag"]
    assert db.value("SELECT count(*) FROM tasks.projects WHERE slug = 'once'") == 1
    assert (
        len(db.events(entity_type="project", action="created", entity_id=first.json()["id"])) == 1
    )

    before = db.snapshot()
    other = alice.post("/api/projects", json={**body, "name": "Other"}, headers=headers)
    assert other.status_code == 422
    assert "Idempotency-Key" in other.json()["error"]
    assert db.snapshot() == before

    # keys are per caller: bob may use the same key for his own request
    bob: User = make_user("bob-idem")
    mine = bob.post("/api/projects", json={"slug": "bobs", "name": "B"}, headers=headers)
    assert mine.status_code == 201

    # a failed request stores nothing: the key can be used again after fixing the body
    failed = alice.post(
        "/api/projects", json={"slug": "once", "name": "Dup"}, headers={"Idempotency-Key": "k2"}
    )
    assert failed.status_code == 400
    retry = alice.post(
        "/api/projects", json={"slug": "twice", "name": "Two"}, headers={"Idempotency-Key": "k2"}
    )
    assert retry.status_code == 201


def test_concurrent_requests_with_one_idempotency_key_write_once(make_user, db: Database) -> None:
    from concurrent.futures import ThreadPoolExecutor

    alice: User = make_user("alice-idem-race")
    alice.get("/api/projects")
    body = {"slug": "raced", "name": "Raced"}

    def post(_: int) -> tuple[int, dict]:
        r = alice.post("/api/projects", json=body, headers={"Idempotency-Key": "race"})
        return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(post, range(6)))
    assert {status for status, _ in results} == {201}
    assert len({body["id"] for _, body in results}) == 1
    assert db.value("SELECT count(*) FROM tasks.projects WHERE slug = 'raced'") == 1
    assert (
        len(db.events(entity_type="project", action="created", entity_id=results[0][1]["id"])) == 1
    )
