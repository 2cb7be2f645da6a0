"""A task's subtask roll-up (``subtask_count``, ``subtask_progress``) is kept on the task by
migration 0021's triggers: it must stay what its direct subtasks say through every way they
are created, changed, moved and deleted, including deletes racing subtask writes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
from taskflow_core.migrations import migration_files

from tests.integration.tasks_api.conftest import MakeUser, User
from tests.support.invariants import rollup_mismatches

Db = psycopg.Connection[dict[str, Any]]


def _subtask(user: User, parent: int, title: str) -> int:
    resp = user.post(f"/api/tasks/{parent}/subtasks", {"title": title})
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def _progress(user: User, tid: int, percent: int) -> None:
    user.patch(f"/api/tasks/{tid}/status", {"status": "in_progress"})
    resp = user.patch(f"/api/tasks/{tid}/progress", {"percent": percent})
    assert resp.status_code == 200, resp.text


def _rollup(user: User, tid: int) -> tuple[int, int | None]:
    """The roll-up as GET shows it, checked against the subtasks GET lists with it."""
    body = user.get(f"/api/tasks/{tid}").json()
    children = [s["progress_percent"] for s in body["subtasks"]]
    expected = (len(children), sum(children) // len(children) if children else None)
    assert (body["subtask_count"], body["subtask_progress"]) == expected, body
    return expected


def test_every_way_subtasks_change_keeps_the_parents_roll_up(make_user: MakeUser, db: Db) -> None:
    alice = make_user()
    pid = alice.new_project()
    p1, p2 = alice.task(pid, title="P1")["id"], alice.task(pid, title="P2")["id"]
    assert _rollup(alice, p1) == (0, None)
    a, b, c = (_subtask(alice, p1, name) for name in "abc")
    _progress(alice, a, 40)
    _progress(alice, b, 71)
    assert _rollup(alice, p1) == (3, 37)  # floor(111 / 3)
    listed = {t["id"]: t for t in alice.get(f"/api/projects/{pid}/tasks").json()}
    assert (listed[p1]["subtask_count"], listed[p1]["subtask_progress"]) == (3, 37)

    assert alice.put(f"/api/tasks/{c}", {"parent_task_id": p2}).status_code == 200
    assert _rollup(alice, p1) == (2, 55) and _rollup(alice, p2) == (1, 0)
    assert alice.put(f"/api/tasks/{b}", {"parent_task_id": None}).status_code == 200
    assert _rollup(alice, p1) == (1, 40)
    assert alice.patch(f"/api/tasks/{a}/status", {"status": "completed"}).status_code == 200
    _rollup(alice, p1)
    grandchild = _subtask(alice, c, "grandchild")
    _progress(alice, grandchild, 90)
    assert _rollup(alice, c) == (1, 90) and _rollup(alice, p2) == (1, 0)

    assert alice.delete(f"/api/tasks/{a}").status_code == 200
    assert _rollup(alice, p1) == (0, None)
    assert alice.delete(f"/api/tasks/{c}").status_code == 200  # with its grandchild
    assert _rollup(alice, p2) == (0, None)
    assert rollup_mismatches(db) == []


def test_cloned_subtasks_count_on_the_next_occurrence(make_user: MakeUser, db: Db) -> None:
    alice = make_user()
    pid = alice.new_project()
    root = alice.task(
        pid, title="weekly", recurrence_pattern="weekly", clone_subtasks_on_recur=True
    )
    for name in "xy":
        _subtask(alice, root["id"], name)
    done = alice.patch(f"/api/tasks/{root['id']}/status", {"status": "completed"})
    assert done.status_code == 200, done.text
    (nxt,) = [
        t
        for t in alice.get(f"/api/projects/{pid}/tasks").json()
        if t["title"] == "weekly" and t["id"] != root["id"]
    ]
    assert _rollup(alice, nxt["id"]) == (2, 0)
    assert nxt["subtask_count"] == 2
    assert rollup_mismatches(db) == []


def _race(alice: User, children: list[int], delete: str) -> list[httpx.Response]:
    """Progress writes to every child, several rounds, while ``delete`` runs among them."""

    def call(job: tuple[str, int]) -> httpx.Response:
        kind, arg = job
        if kind == "delete":
            return alice.delete(delete)
        return alice.patch(f"/api/tasks/{arg}/progress", {"percent": arg % 100})

    jobs = [("patch", tid) for _ in range(4) for tid in children]
    jobs.insert(len(jobs) // 2, ("delete", 0))
    with ThreadPoolExecutor(max_workers=12) as pool:
        return list(pool.map(call, jobs))


def test_deleting_while_subtasks_are_written_never_deadlocks(make_user: MakeUser, db: Db) -> None:
    """A subtask's write locks its row, then its parent's; a delete takes the subtree leaves
    first, so neither waits on the other in a cycle (PostgreSQL would abort one after a
    second: a 503; seen with the parent locked first)."""
    alice = make_user()
    for round_ in range(6):
        pid = alice.new_project()
        parent = alice.task(pid, title="parent")["id"]
        children = [_subtask(alice, parent, f"c{i}") for i in range(8)]
        for tid in children:
            alice.patch(f"/api/tasks/{tid}/status", {"status": "in_progress"})
        delete = f"/api/projects/{pid}?force=true" if round_ % 2 else f"/api/tasks/{parent}"
        results = _race(alice, children, delete)
        codes = [r.status_code for r in results]
        assert set(codes) <= {200, 404}, [(r.status_code, r.text) for r in results if r.is_error]
        gone = db.execute("SELECT count(*) AS n FROM tasks.tasks WHERE id = ANY(%s)", (children,))
        assert gone.fetchone() == {"n": 0}
    assert rollup_mismatches(db) == []


def test_migration_fills_in_the_roll_up_of_existing_tasks(make_user: MakeUser, db: Db) -> None:
    """0021 on a database with subtasks already there (its objects dropped and the migration
    run again): every parent gets its count and progress sum."""
    alice = make_user()
    pid = alice.new_project()
    parent = alice.task(pid, title="parent")["id"]
    kids = [_subtask(alice, parent, f"k{i}") for i in range(3)]
    _progress(alice, kids[0], 50)
    _progress(alice, kids[1], 25)
    nested = _subtask(alice, kids[1], "nested")
    (sql,) = [
        sql for version, sql in migration_files("taskflow_tasks") if version.startswith("0021")
    ]
    with db.transaction():  # one transaction: behind PgBouncer a SET alone may not stay
        db.execute("SET LOCAL search_path TO tasks, public")
        db.execute(
            "DROP TRIGGER tasks_subtask_rollup_insert ON tasks;"
            " DROP TRIGGER tasks_subtask_rollup_update ON tasks;"
            " DROP TRIGGER tasks_subtask_rollup_delete ON tasks;"
            " DROP FUNCTION subtask_rollup_row(); DROP FUNCTION subtask_rollup_deleted();"
            " ALTER TABLE tasks DROP COLUMN subtask_count, DROP COLUMN subtask_progress_sum"
        )
        db.execute(sql)
    assert _rollup(alice, parent) == (3, 25)
    assert _rollup(alice, kids[1]) == (1, 0)
    assert rollup_mismatches(db) == []
    _subtask(alice, nested, "deeper")  # and the triggers are back
    assert _rollup(alice, nested) == (1, 0)
