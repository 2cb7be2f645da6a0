"""Status and progress changes over every case of the workflow table, who is asking and whether
the task recurs: the API answers exactly what the rules of ``workflow`` say, writes what they
say, and leaves one event with the right "before" (common changes are applied by one guarded
statement in the database, so its guard must agree with the rules everywhere)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
from taskflow_core.errors import BadRequest, Forbidden
from taskflow_tasks.tasks import workflow as wf

from tests.integration.tasks_api.conftest import MakeUser, Outbox, User

EARLIER = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PROGRESS = 40
T = TypeVar("T")


def _set_state(
    db: psycopg.Connection[Any], tid: int, status: str, assignee: int | None, recurring: bool
) -> None:
    db.execute(
        """UPDATE tasks.tasks SET status = %s, started_at = %s, completed_at = %s,
               progress_percent = %s, assignee_id = %s, is_recurring = %s,
               recurrence_pattern = %s, recurrence_trigger = 'on_complete',
               has_spawned_next = false
           WHERE id = %s""",
        (
            status,
            None if status == "pending" else EARLIER,
            EARLIER if status == "completed" else None,
            100 if status == "completed" else PROGRESS,
            assignee,
            recurring,
            "daily" if recurring else None,
            tid,
        ),
    )


def _row(db: psycopg.Connection[Any], tid: int) -> dict[str, Any]:
    row = db.execute(
        "SELECT status, started_at, completed_at, progress_percent FROM tasks.tasks WHERE id = %s",
        (tid,),
    ).fetchone()
    assert row is not None
    return dict(row)


def _spawned(db: psycopg.Connection[Any], tid: int) -> int:
    row = db.execute(
        "SELECT count(*) AS n FROM tasks.tasks WHERE recurring_root_id = %s", (tid,)
    ).fetchone()
    assert row is not None
    return int(row["n"])


def _outcome(
    assignee: int | None, caller: int | None, owner: bool, rule: Callable[..., T], **args: Any
) -> T | int:
    """What the rules say: FR-011 for ``caller``, then ``rule(**args)``'s result, or the
    error status."""
    if caller is None:
        return 403  # not a member
    try:
        wf.check_may_modify(assignee_id=assignee, caller_worker_id=caller, is_owner=owner)
        return rule(**args)
    except Forbidden:
        return 403
    except BadRequest:
        return 400


def _callers(make_user: MakeUser) -> tuple[int, list[tuple[User, int | None, bool, int | None]]]:
    """A project, and (caller, caller's worker id, owner?, assignee) for every relation."""
    alice, bob, carol = make_user(), make_user(), make_user()
    pid = alice.new_project()
    bob_id = alice.add_member(pid, bob)
    carol.get("/api/projects")  # exists in the tenant, not a member
    members = alice.get(f"/api/projects/{pid}/members").json()
    alice_id = next(m["worker_id"] for m in members if m["role"] == "owner")
    return pid, [
        (alice, alice_id, True, None),
        (alice, alice_id, True, bob_id),
        (bob, bob_id, False, None),
        (bob, bob_id, False, bob_id),
        (bob, bob_id, False, alice_id),
        (carol, None, False, None),
    ]


def test_status_changes_follow_the_rules_in_every_case(
    make_user: MakeUser, db: psycopg.Connection[Any], outbox: Outbox
) -> None:
    pid, callers = _callers(make_user)
    tid = callers[0][0].task(pid)["id"]
    checked = 0
    for (user, worker, owner, assignee), recurring, current, new in itertools.product(
        callers, (False, True), wf.STATUSES, wf.STATUSES
    ):
        case = f"{current}->{new} by worker {worker} (owner={owner}) on task of {assignee}"
        case += f", recurring={recurring}"
        _set_state(db, tid, current, assignee, recurring)
        before, spawned = _row(db, tid), _spawned(db, tid)
        outbox.start()
        resp = user.patch(f"/api/tasks/{tid}/status", {"status": new})
        expected = _outcome(
            assignee,
            worker,
            owner,
            wf.change_status,
            current=current,
            new=new,
            started_at=before["started_at"],
            completed_at=before["completed_at"],
            progress_percent=before["progress_percent"],
            now=datetime.now(UTC),
        )
        if isinstance(expected, int):
            assert resp.status_code == expected, (case, resp.text)
            assert _row(db, tid) == before, case
            assert outbox.new() == [], case
            continue
        assert resp.status_code == 200, (case, resp.text)
        after = _row(db, tid)
        assert after["status"] == new, case
        assert after["progress_percent"] == expected.progress_percent, case
        if new == "in_progress" and current == "pending":
            assert after["started_at"] is not None and after["started_at"] != EARLIER, case
        else:
            assert after["started_at"] == before["started_at"], case
        if new == "completed":
            assert after["completed_at"] not in (None, EARLIER), case
        else:
            assert after["completed_at"] == before["completed_at"], case
        assert resp.json()["status"] == new, case
        assert _spawned(db, tid) == spawned + (recurring and new == "completed"), case
        changes = [e for e in outbox.new() if e["action"] == "status_changed"]
        assert len(changes) == 1, case
        assert changes[0]["project_id"] == pid and changes[0]["entity_id"] == tid, case
        assert changes[0]["details"]["before"] == current, case
        assert changes[0]["details"]["after"] == new, case
        checked += 1
    assert checked > 0


def test_progress_changes_follow_the_rules_in_every_case(
    make_user: MakeUser, db: psycopg.Connection[Any], outbox: Outbox
) -> None:
    pid, callers = _callers(make_user)
    tid = callers[0][0].task(pid)["id"]
    for (user, worker, owner, assignee), current in itertools.product(callers, wf.STATUSES):
        case = f"progress on {current} by worker {worker} (owner={owner}) on task of {assignee}"
        _set_state(db, tid, current, assignee, recurring=False)
        before = _row(db, tid)
        outbox.start()
        resp = user.patch(f"/api/tasks/{tid}/progress", {"percent": 70, "note": "n"})
        refused = _outcome(assignee, worker, owner, wf.check_progress_allowed, status=current)
        expected = 200 if refused is None else refused
        assert resp.status_code == expected, (case, resp.text)
        if expected != 200:
            assert _row(db, tid) == before, case
            assert outbox.new() == [], case
            continue
        assert resp.json()["progress_percent"] == 70, case
        assert _row(db, tid) == {**before, "progress_percent": 70}, case
        (event,) = outbox.new()
        assert event["action"] == "progress_updated", case
        assert event["project_id"] == pid and event["entity_id"] == tid, case
        assert event["details"] == {"before": PROGRESS, "after": 70, "note": "n"}, case
