"""A human written by `taskflow import-cli` (user_id 'cli-import:@handle', no SSO subject yet)
is claimed by the first SSO login of the same person in the same tenant: only by the email
recorded at import, and only when the IdP says that email is verified. A handle never claims
(humans imported without an email are bound with `import-cli --user @handle=SUB`). The login
then sees the imported memberships as its own, and the claim is audited."""

from __future__ import annotations

from typing import Any

from .conftest import Database


def _imported_human(
    db: Database, handle: str, *, email: str | None = None, tenant: str = "tenant-a"
) -> tuple[int, int]:
    """What the importer writes: the worker and a project it is a member of."""
    worker = db.rows(
        "INSERT INTO tasks.workers (handle, name, type, user_id, tenant_id, email, created_at,"
        " updated_at) VALUES (%s, %s, 'human', %s, %s, %s, now(), now()) RETURNING id",
        (handle, handle.lstrip("@").title(), "cli-import:" + handle, tenant, email),
    )[0]["id"]
    project = db.rows(
        "INSERT INTO tasks.projects (tenant_id, slug, name, owner_id, owner_worker_id, is_default,"
        " created_at, updated_at) VALUES (%s, %s, 'Imported', %s, %s, false, now(), now())"
        " RETURNING id",
        (tenant, f"imported-{handle.lstrip('@')}", "cli-import:" + handle, worker),
    )[0]["id"]
    db.rows(
        "INSERT INTO tasks.project_members (project_id, worker_id, role, joined_at)"
        " VALUES (%s, %s, 'owner', now()) RETURNING id",
        (project, worker),
    )
    return worker, project


def _project_ids(user: Any) -> set[int]:
    return {p["id"] for p in user.get("/api/projects", params={"limit": 100}).json()}


def test_first_login_claims_the_imported_human(make_user, db: Database) -> None:
    worker, project = _imported_human(db, "@bob", email="Robert.B@corp.test")
    bob = make_user("bob-sub", email="robert.b@corp.test", name="Bob", email_verified=True)
    assert project in _project_ids(bob)  # the recorded email, any case
    row = db.rows("SELECT id, handle, user_id, email FROM tasks.workers WHERE user_id = 'bob-sub'")
    assert row == [
        {"id": worker, "handle": "@bob", "user_id": "bob-sub", "email": "Robert.B@corp.test"}
    ]
    (claimed,) = db.events(action="claimed")
    assert claimed["entity_id"] == worker
    assert claimed["details"]["matched_by"] == "email"
    assert db.value("SELECT count(*) FROM tasks.workers WHERE type = 'human'") == 1
    # Claimed once: a later login with the same verified email gets a new worker.
    other = make_user("other-sub", email="robert.b@corp.test", name="Not Bob", email_verified=True)
    assert project not in _project_ids(other)
    assert len(db.events(action="claimed")) == 1


def test_what_is_never_claimed(make_user, db: Database) -> None:
    # An email recorded at import is the only key: the handle alone does not claim it.
    _, p1 = _imported_human(db, "@carol", email="carol@corp.test")
    carol = make_user("carol-sub", email="carol@elsewhere.test", email_verified=True)
    # Nor does it claim one imported without an email: bind those with --user @handle=SUB.
    _, p0 = _imported_human(db, "@bob")
    bob = make_user("bob-sub", email="bob@corp.test", email_verified=True)
    # Another tenant's import is not claimed by this tenant's login.
    _, p2 = _imported_human(db, "@dave", email="dave@corp.test", tenant="tenant-b")
    dave = make_user("dave-sub", email="dave@corp.test", email_verified=True)
    # An email the IdP does not say is verified claims nothing.
    _, p3 = _imported_human(db, "@erin", email="erin@corp.test")
    erins = [
        make_user(f"erin-{i}", email="erin@corp.test", **claims)
        for i, claims in enumerate(({}, {"email_verified": False}, {"email_verified": "true"}))
    ]
    assert p1 not in _project_ids(carol)
    assert p0 not in _project_ids(bob)
    assert p2 not in _project_ids(dave)
    assert all(p3 not in _project_ids(erin) for erin in erins)
    assert db.events(action="claimed") == []
    unclaimed = db.value(
        "SELECT count(*) FROM tasks.workers WHERE starts_with(user_id, 'cli-import:')"
    )
    assert unclaimed == 4


def test_a_subject_spelled_like_an_import_marker_is_refused(make_user, db: Database) -> None:
    _imported_human(db, "@frank")
    impostor = make_user("cli-import:@frank", email="x@corp.test")
    assert impostor.get("/api/projects").status_code == 401
