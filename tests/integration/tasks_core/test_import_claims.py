"""A human written by `taskflow import-cli` (user_id 'cli-import:@handle', no SSO subject yet)
is claimed by the first SSO login of the same person in the same tenant: by the email recorded
at import, or by the handle only when no email was recorded. The login then sees the imported
memberships as its own, and the claim is audited."""

from __future__ import annotations

from typing import Any

import pytest

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


@pytest.mark.parametrize(
    ("recorded", "login"),
    [
        (None, "bob@corp.test"),  # no email recorded: the handle a login derives (@bob)
        ("Robert.B@corp.test", "robert.b@corp.test"),  # the recorded email, any case
    ],
)
def test_first_login_claims_the_imported_human(
    make_user, db: Database, recorded: str | None, login: str
) -> None:
    worker, project = _imported_human(db, "@bob", email=recorded)
    bob = make_user("bob-sub", email=login, name="Bob")
    assert project in _project_ids(bob)
    row = db.rows("SELECT id, handle, user_id, email FROM tasks.workers WHERE user_id = 'bob-sub'")
    assert row == [
        {"id": worker, "handle": "@bob", "user_id": "bob-sub", "email": recorded or login}
    ]
    (claimed,) = db.events(action="claimed")
    assert claimed["entity_id"] == worker
    assert claimed["details"]["matched_by"] == ("email" if recorded else "handle")
    assert db.value("SELECT count(*) FROM tasks.workers WHERE type = 'human'") == 1
    # Claimed once: a later login of someone else with the same handle gets a new worker.
    other = make_user("other-sub", email=login.replace("robert.b", "bob"), name="Not Bob")
    assert project not in _project_ids(other)
    assert len(db.events(action="claimed")) == 1


def test_what_is_never_claimed(make_user, db: Database) -> None:
    # An email recorded at import is the only key: the handle alone does not claim it.
    _, p1 = _imported_human(db, "@carol", email="carol@corp.test")
    # Another tenant's import is not claimed by this tenant's login.
    _, p2 = _imported_human(db, "@dave", tenant="tenant-b")
    carol = make_user("carol-sub", email="carol@elsewhere.test")
    dave = make_user("dave-sub", email="dave@corp.test")
    # An email the IdP says is unverified claims nothing.
    _, p3 = _imported_human(db, "@erin")
    erin = make_user("erin-sub", email="erin@corp.test", email_verified=False)
    assert p1 not in _project_ids(carol)
    assert p2 not in _project_ids(dave)
    assert p3 not in _project_ids(erin)
    assert db.events(action="claimed") == []
    unclaimed = db.value(
        "SELECT count(*) FROM tasks.workers WHERE starts_with(user_id, 'cli-import:')"
    )
    assert unclaimed == 3


def test_a_subject_spelled_like_an_import_marker_is_refused(make_user, db: Database) -> None:
    _imported_human(db, "@frank")
    impostor = make_user("cli-import:@frank", email="x@corp.test")
    assert impostor.get("/api/projects").status_code == 401
