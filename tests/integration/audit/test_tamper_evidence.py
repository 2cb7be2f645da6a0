"""The audit table refuses changes in SQL itself, and an entry altered anyway (by a superuser
who disables the trigger) is found by `taskflow audit verify` and GET /api/audit/verify."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from taskflow_audit.chain import entry_hash
from taskflow_audit.store import SNAPSHOT, verify_project_chain
from taskflow_core.auth.service_tokens import ServiceCredentials
from taskflow_core.config import Settings

from .conftest import AuditStack, MakeUser, wait_delivered


def run_verify(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskflow_cli.main", "audit", "verify", *args],
        env={**os.environ, "DATABASE_URL": db_url, "LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def history(stack: AuditStack, make_user: MakeUser, db: psycopg.Connection[dict[str, Any]]):
    stack.start_audit()
    stack.start_tasks()
    alice = make_user()
    project = alice.new_project()
    for i in range(6):
        alice.new_task(project, f"Task {i}")
    wait_delivered(db)
    return alice, project


REFUSED = [
    "UPDATE audit.entries SET action = 'forged' WHERE id = 3",
    "DELETE FROM audit.entries WHERE id = 3",
    "TRUNCATE audit.entries",
    "DELETE FROM audit.chain_head",
    "UPDATE audit.chain_head SET last_id = 0",
    "TRUNCATE audit.chain_head",
]


def test_changes_in_sql_are_refused_by_the_database(
    history: Any, db: psycopg.Connection[dict[str, Any]]
) -> None:
    before = db.execute("SELECT count(*) AS n FROM audit.entries").fetchone()
    for statement in REFUSED:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=r"append-only|head"):
            db.execute(statement)
    assert db.execute("SELECT count(*) AS n FROM audit.entries").fetchone() == before
    # Grants too: nobody holds UPDATE/DELETE/TRUNCATE on the entries (superusers skip grants,
    # which is why the triggers exist).
    acl = db.execute(
        "SELECT array_to_string(relacl, ',') AS acl FROM pg_class"
        " WHERE oid = 'audit.entries'::regclass"
    ).fetchone()
    assert acl is not None
    for grant in str(acl["acl"]).split(","):
        privileges = grant.split("=")[1].split("/")[0]
        assert not set("wdD") & set(privileges), grant


def test_an_entry_altered_by_a_superuser_is_reported_at_its_position(
    history: Any, db: psycopg.Connection[dict[str, Any]], db_url: str
) -> None:
    alice, project = history
    intact = run_verify(db_url)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "OK" in intact.stdout
    total = db.execute("SELECT last_id FROM audit.chain_head").fetchone()["last_id"]  # type: ignore[index]
    target = db.execute(
        "SELECT id FROM audit.entries WHERE project_id = %s AND entity_type = 'task'"
        " ORDER BY id OFFSET 2 LIMIT 1",
        (project,),
    ).fetchone()["id"]  # type: ignore[index]
    assert 1 < target < total

    # A superuser bypasses grants but must switch the trigger off to rewrite history.
    db.execute("ALTER TABLE audit.entries DISABLE TRIGGER entries_no_update")
    db.execute(
        'UPDATE audit.entries SET details = \'{"title": "nothing to see"}\' WHERE id = %s',
        (target,),
    )
    db.execute("ALTER TABLE audit.entries ENABLE TRIGGER entries_no_update")

    broken = run_verify(db_url)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert f"BROKEN at position {target}" in broken.stdout
    as_json = json.loads(run_verify(db_url, "--json").stdout)
    assert as_json["ok"] is False
    assert as_json["first_broken"]["position"] == target
    assert as_json["first_broken"]["reason"] == "hash"
    scoped = run_verify(db_url, "--project-id", str(project))
    assert scoped.returncode == 1 and f"position {target}" in scoped.stdout

    # The project owner sees the same through the API.
    report = alice.audit.get("/api/audit/verify", params={"project_id": project}).json()
    assert report["ok"] is False
    assert report["first_broken"]["position"] == target
    assert report["first_broken"]["entry_id"] == target


def verify_in_batches(db_url: str, project: int, batch: int) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        conn = await psycopg.AsyncConnection.connect(
            db_url, row_factory=dict_row, prepare_threshold=None
        )
        async with conn, conn.transaction():
            await conn.execute(SNAPSHOT)
            return (await verify_project_chain(conn, project, batch=batch)).as_dict()

    return asyncio.run(run())


def test_the_project_check_streams_its_entries_and_reports_the_same(
    history: Any, db: psycopg.Connection[dict[str, Any]], db_url: str
) -> None:
    """The owner's check reads the project's entries a batch at a time (memory stays flat for
    a long history): batches of one or two entries give the report one batch gives, intact and
    with an entry in the middle altered."""
    _, project = history
    whole = verify_in_batches(db_url, project, 10_000)
    assert whole["ok"] is True and whole["checked"] >= 7
    assert [verify_in_batches(db_url, project, size) for size in (1, 2)] == [whole, whole]

    target = db.execute(
        "SELECT id FROM audit.entries WHERE project_id = %s ORDER BY id OFFSET 3 LIMIT 1",
        (project,),
    ).fetchone()["id"]  # type: ignore[index]
    db.execute("ALTER TABLE audit.entries DISABLE TRIGGER entries_no_update")
    db.execute("UPDATE audit.entries SET action = 'forged' WHERE id = %s", (target,))
    db.execute("ALTER TABLE audit.entries ENABLE TRIGGER entries_no_update")
    broken = verify_in_batches(db_url, project, 10_000)
    assert broken["first_broken"]["position"] == target
    assert broken["first_broken"]["reason"] == "hash"
    assert broken["checked"] == whole["checked"]
    assert [verify_in_batches(db_url, project, size) for size in (1, 2)] == [broken, broken]


def test_rehashed_forgery_breaks_the_next_link(
    history: Any, db: psycopg.Connection[dict[str, Any]], db_url: str
) -> None:
    """Recomputing the forged entry's own hash does not help: its successor no longer links."""
    row = db.execute("SELECT * FROM audit.entries WHERE id = 2").fetchone()
    assert row is not None
    forged = {**row, "action": "forged"}
    db.execute("ALTER TABLE audit.entries DISABLE TRIGGER USER")
    db.execute(
        "UPDATE audit.entries SET action = 'forged', hash = %s WHERE id = 2",
        (entry_hash(row["prev_hash"], forged),),
    )
    db.execute("ALTER TABLE audit.entries ENABLE TRIGGER USER")
    report = json.loads(run_verify(db_url, "--json").stdout)
    assert report["first_broken"]["position"] == 3
    assert report["first_broken"]["reason"] == "link"


def test_concurrent_batches_extend_one_unbroken_chain(
    stack: AuditStack, db: psycopg.Connection[dict[str, Any]], db_url: str
) -> None:
    """Many writers at once (replicas, retries): ids stay contiguous and every link holds."""
    stack.start_audit()
    token = ServiceCredentials(Settings(service_secret=stack.secret), "tasks").token_for("audit")
    event_ids = [str(uuid.uuid4()) for _ in range(160)]

    def batch(ids: list[str]) -> dict[str, Any]:
        return {
            "events": [
                {
                    "event_id": event_id,
                    "tenant_id": "tenant-a",
                    "project_id": 1,
                    "entity_type": "task",
                    "entity_id": n,
                    "action": "created",
                    "actor_type": "agent",
                    "details": {"n": n, "ratio": n / 7, "big": 10**20, "text": "é\u2028"},
                    "created_at": "2026-02-03T04:05:06+00:00",
                }
                for n, event_id in enumerate(ids)
            ]
        }

    # Overlapping batches: every event is sent by two writers.
    chunks = [event_ids[i : i + 20] for i in range(0, 160, 10)]

    def post(ids: list[str]) -> int:
        resp = httpx.post(
            f"{stack.audit_url}/internal/audit/events",
            json=batch(ids),
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        return resp.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(post, chunks)) == {200}
    rows = db.execute("SELECT id FROM audit.entries ORDER BY id").fetchall()
    assert [r["id"] for r in rows] == list(range(1, 161))
    report = json.loads(run_verify(db_url, "--json").stdout)
    assert report["ok"] is True and report["checked"] == 160
