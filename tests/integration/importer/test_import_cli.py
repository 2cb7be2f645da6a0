"""``taskflow import-cli``: a realistic CLI folder imported, then read back through the public
API over real HTTP (tasks and audit services, relay included, real tokens); re-runs create
nothing; a killed run resumes to the result of one clean run; bad input is refused line by
line with nothing written."""

from __future__ import annotations

import json
import math
import re
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from taskflow_cli.main import main

from tests.support.postgres import create_database, drop_database

from .cli_data import CliSimulation, large, realistic
from .conftest import OWNER_SUB, TENANT, Services, counts, run_import, wait_delivered

OFFSET = timedelta(hours=2)


def utc_iso(local: str) -> str:
    """The API's rendering of a CLI local time read at UTC+02:00."""
    parsed = datetime.fromisoformat(local) - OFFSET
    return parsed.replace(tzinfo=UTC).isoformat()


def all_pages(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    params = {"limit": 100, **params}
    while True:
        resp = client.get(path, params=params)
        assert resp.status_code == 200, f"{path} {params}: {resp.text}"
        rows.extend(resp.json())
        cursor = resp.headers.get("X-Next-Cursor")
        if not cursor:
            return rows
        params = {**params, "cursor": cursor}


def import_args(folder: Path, *extra: str) -> list[str | Path]:
    return [folder, "--tenant", TENANT, "--owner", OWNER_SUB, "--utc-offset", "+02:00", *extra]


def test_realistic_import_reads_back_through_the_api_and_a_second_run_creates_nothing(
    tmp_path: Path, db_url: str, services: Services, db: psycopg.Connection[dict[str, Any]]
) -> None:
    sim = realistic()
    folder = sim.write(tmp_path)
    first = run_import(db_url, *import_args(folder))
    assert first.code == 0, first.err
    assert "local times read as UTC+02:00 (--utc-offset)" in first.out
    assert "warning: tasks[5] (id 7): orphaned subtask: parent 6 was deleted" in first.err
    assert "recurrence 'every tuesday' is not one of" in first.err
    for line in normalised_timestamp_warnings(sim):
        assert line in first.err, first.err
    assert "imported:" in first.out
    # @bob has no SSO subject or email: the importer says how to make him claimable.
    assert "note: no SSO login can claim @bob" in first.out and "--user @HANDLE=SUB" in first.out

    services.start()
    wait_delivered(db)
    tasks_api, audit_api = services.client("tasks"), services.client("audit")

    # Projects, owned by the importing user (the CLI's current user @alice is that owner).
    projects = {p["slug"]: p for p in all_pages(tasks_api, "/api/projects")}
    assert {"default", "website", "infra"} <= set(projects)
    for slug in ("default", "website", "infra"):
        assert projects[slug]["owner_id"] == OWNER_SUB
    assert projects["website"]["description"] == "The public site"

    # Workers: agents keep type and capabilities; members are every worker the tasks name.
    agents = {a["handle"]: a for a in all_pages(tasks_api, "/api/workers/agents")}
    assert agents["@claude"]["agent_type"] == "claude"
    assert agents["@claude"]["capabilities"] == ["python", "review"]
    assert agents["@qwen-coder"]["agent_type"] == "qwen"
    members = tasks_api.get(f"/api/projects/{projects['website']['id']}/members").json()
    roles = {m["handle"]: m["role"] for m in members}
    assert roles == {"@alice": "owner", "@bob": "member", "@claude": "member"}

    # Tasks: every field, parents, the orphan, due dates and derived times in UTC.
    api_tasks: dict[str, dict[str, Any]] = {}
    for project in projects.values():
        for item in all_pages(tasks_api, f"/api/projects/{project['id']}/tasks"):
            full = tasks_api.get(f"/api/tasks/{item['id']}")
            assert full.status_code == 200, full.text
            api_tasks[item["title"]] = {**full.json(), "slug": project["slug"]}
    by_cli_id = {t["id"]: t for t in sim.tasks}
    assert set(api_tasks) == {t["title"] for t in sim.tasks}
    for cli in sim.tasks:
        got = api_tasks[cli["title"]]
        assert got["slug"] == cli["project_slug"]
        assert (got["status"], got["priority"]) == (cli["status"], cli["priority"])
        assert got["progress_percent"] == cli["progress_percent"]
        assert got["tags"] == cli["tags"]
        assert got["description"] == cli["description"]
        assert got["due_date"] == (utc_iso(cli["due_date"]) if cli["due_date"] else None)
        assert got["assignee_handle"] == cli["assigned_to"]
        assert got["created_at"] == utc_iso(cli["created_at"])
        parent = by_cli_id.get(cli["parent_id"]) if cli["parent_id"] else None
        expected_parent = api_tasks[parent["title"]]["id"] if parent else None
        assert got["parent_task_id"] == expected_parent
    assert api_tasks["Migrate data off the old server"]["parent_task_id"] is None  # orphan
    design = api_tasks["Design"]
    assert {s["title"] for s in design["subtasks"]} == {"Mockups", "Logo"}  # nested 2 levels
    assert api_tasks["Nightly backups"]["is_recurring"] is True
    assert api_tasks["Nightly backups"]["recurrence_pattern"] == "daily"
    assert api_tasks["Rotate keys"]["is_recurring"] is False
    history = {
        (e["task_id"], e["action"]): e["timestamp"].replace(" ", "T") for e in sim.audit_logs
    }
    mockups_cli = next(t for t in sim.tasks if t["title"] == "Mockups")
    assert api_tasks["Mockups"]["started_at"] == utc_iso(history[(mockups_cli["id"], "started")])
    assert api_tasks["Mockups"]["completed_at"] == utc_iso(history[(mockups_cli["id"], "approved")])
    assert api_tasks["Read the manual"]["started_at"] is None

    # Audit: each task's CLI history, original times (UTC), actor, action, marked as imported.
    for cli in sim.tasks:
        got = api_tasks[cli["title"]]
        entries = all_pages(audit_api, f"/api/tasks/{got['id']}/audit", order="asc")
        expected = [e for e in sim.audit_logs if e["task_id"] == cli["id"]]
        assert [e["action"] for e in entries] == [e["action"] for e in expected]
        assert [e["created_at"] for e in entries] == [
            utc_iso(e["timestamp"].replace(" ", "T")) for e in expected
        ]
        assert [e["actor_handle"] for e in entries] == [e["actor_id"] for e in expected]
        assert [e["actor_type"] for e in entries] == [e["actor_type"] for e in expected]
        for entry, source in zip(entries, expected, strict=True):
            assert entry["details"]["imported_from"] == "cli"
            assert entry["details"]["cli_audit_id"] == source["id"]
            assert entry["details"]["utc_offset"] == "+02:00"
            for key, value in source["context"].items():
                assert entry["details"][key] == value
    copy_history = all_pages(audit_api, f"/api/tasks/{api_tasks['Copy']['id']}/audit")
    assert len(copy_history) > 60  # the long history, across pages
    # The entry written with a space separator kept its time.
    spaced = sim.audit_logs[5]
    assert " " in spaced["timestamp"]
    infra_audit = all_pages(audit_api, f"/api/projects/{projects['infra']['id']}/audit")
    website_audit = all_pages(audit_api, f"/api/projects/{projects['website']['id']}/audit")
    matching = [
        e for e in infra_audit + website_audit if e["details"].get("cli_audit_id") == spaced["id"]
    ]
    assert [e["created_at"] for e in matching] == [utc_iso(spaced["timestamp"].replace(" ", "T"))]
    # The history of the task deleted in the CLI stays readable in its project.
    deleted = [e for e in infra_audit if e["action"] == "deleted"]
    assert [e["details"]["title"] for e in deleted] == ["Old server"]
    assert all(e["details"]["imported_from"] == "cli" for e in deleted)
    # Every CLI entry arrived once (their ids repeat in the CLI: count them by position).
    default_audit = all_pages(audit_api, f"/api/projects/{projects['default']['id']}/audit")
    cli_entries = [
        e for e in infra_audit + website_audit + default_audit if "cli_audit_id" in e["details"]
    ]
    assert len(cli_entries) == len(sim.audit_logs)
    assert len({e["event_id"] for e in cli_entries}) == len(sim.audit_logs)
    verify = audit_api.get("/api/audit/verify", params={"project_id": projects["website"]["id"]})
    assert verify.status_code == 200 and verify.json()["ok"] is True, verify.text

    # A second run creates nothing and says so; delivery stays exactly once. Counted once what
    # the calls above wrote is delivered too (under load, one event was still on its way).
    wait_delivered(db)
    before = counts(db)
    second = run_import(db_url, *import_args(folder))
    assert second.code == 0, second.err
    assert "nothing new: this file was already imported" in second.out
    wait_delivered(db)
    assert counts(db) == before
    assert before["audit"] == before["outbox"]  # each outbox event stored once
    tasks_api.close()
    audit_api.close()


@pytest.fixture
def clean_db(pg_admin_url: str, template_db: str) -> Iterator[str]:
    url = create_database(pg_admin_url, template=template_db)
    yield url
    drop_database(pg_admin_url, url)


def snapshot(url: str) -> dict[str, Any]:
    """Everything the import wrote, without database ids (which differ between databases)."""
    with psycopg.connect(url, row_factory=dict_row, prepare_threshold=None) as conn:

        def rows(sql: str) -> list[Any]:
            return [tuple(r.values()) for r in conn.execute(sql).fetchall()]

        return {
            "projects": rows(
                "SELECT slug, name, description, owner_id, tenant_id FROM tasks.projects"
                " ORDER BY slug"
            ),
            "workers": rows(
                "SELECT handle, type, name, agent_type, capabilities::text, user_id, created_at"
                " FROM tasks.workers ORDER BY handle"
            ),
            "members": rows(
                "SELECT p.slug, w.handle, m.role FROM tasks.project_members m"
                " JOIN tasks.projects p ON p.id = m.project_id"
                " JOIN tasks.workers w ON w.id = m.worker_id ORDER BY 1, 2"
            ),
            "tasks": rows(
                """
                SELECT p.slug, t.title, t.status, t.priority, t.progress_percent, t.tags,
                       t.due_date, parent.title AS parent, a.handle AS assignee,
                       c.handle AS creator, t.started_at,
                       t.completed_at, t.created_at, t.updated_at, t.is_recurring
                FROM tasks.tasks t
                JOIN tasks.projects p ON p.id = t.project_id
                LEFT JOIN tasks.tasks parent ON parent.id = t.parent_task_id
                LEFT JOIN tasks.workers a ON a.id = t.assignee_id
                JOIN tasks.workers c ON c.id = t.created_by_id
                ORDER BY t.title
                """
            ),
            "events": rows(
                "SELECT event_id, payload->>'action' AS action,"
                " payload->>'entity_type' AS entity_type,"
                # Rows the import itself creates are stamped with the time of the import.
                " CASE WHEN payload->'details' ? 'cli_audit_id'"
                " THEN payload->>'created_at' END AS created_at,"
                " payload->>'actor_handle' AS actor, payload->'details'->>'cli_audit_id' AS cli"
                " FROM tasks.outbox ORDER BY event_id"
            ),
        }


def test_a_run_killed_half_way_resumes_to_the_result_of_one_clean_run(
    tmp_path: Path, db_url: str, clean_db: str
) -> None:
    sim = large(tasks=1500, audit_entries=4000)
    folder = sim.write(tmp_path)
    # Chunks: workers, projects, memberships (100 each), tasks (500), audit entries (1000).
    # Killed in the middle of the tasks, then again in the middle of the audit history.
    pairs = {
        (t["project_slug"], handle)
        for t in sim.tasks
        for handle in (t["assigned_to"], t["created_by"])
        if handle and handle != sim.current_user
    }
    before_tasks = 2 + math.ceil(len(pairs) / 100)
    killed = run_import(
        db_url, *import_args(folder), TASKFLOW_IMPORT_KILL_AFTER_CHUNKS=str(before_tasks + 2)
    )
    assert killed.code == -signal.SIGKILL
    partial = snapshot(db_url)
    assert len(partial["tasks"]) == 1000 and partial["events"] == [
        e for e in partial["events"] if e[1] in ("created", "member_added")
    ]
    killed_again = run_import(db_url, *import_args(folder), TASKFLOW_IMPORT_KILL_AFTER_CHUNKS="2")
    assert killed_again.code == -signal.SIGKILL
    resumed = run_import(db_url, *import_args(folder))
    assert resumed.code == 0, resumed.err
    assert "imported:" in resumed.out

    clean = run_import(clean_db, *import_args(folder))
    assert clean.code == 0, clean.err
    assert snapshot(db_url) == snapshot(clean_db)
    result = snapshot(db_url)
    assert len(result["tasks"]) == 1500
    assert sum(1 for e in result["events"] if e[5] is not None) == len(sim.audit_logs)

    again = run_import(db_url, *import_args(folder))
    assert "nothing new" in again.out
    assert snapshot(db_url) == result


def _bad_folder(tmp_path: Path, data: dict[str, Any] | str) -> Path:
    folder = tmp_path / ".taskflow"
    folder.mkdir(parents=True, exist_ok=True)
    text = data if isinstance(data, str) else json.dumps(data, indent=2)
    (folder / "data.json").write_text(text)
    return folder


def _valid() -> CliSimulation:
    return realistic()


def _case(name: str) -> tuple[dict[str, Any] | str, list[str]]:
    sim = _valid()
    data = sim.data()
    if name == "unreadable json":
        text = json.dumps(data, indent=2).splitlines()
        text[3] = text[3] + ","  # a stray comma on line 4
        return "\n".join(text), ["problem: data.json: invalid JSON at line 4, column 25"]
    if name == "unknown status":
        data["tasks"][0]["status"] = "done"
        return data, ["problem: tasks[0] (id 1): unknown status 'done'"]
    if name == "dangling parent":
        data["tasks"][1]["parent_id"] = 404
        return data, ["problem: tasks[1] (id 2): dangling parent: no task 404"]
    if name == "dangling assignee":
        data["tasks"][2]["assigned_to"] = "@nobody"
        return data, ["problem: tasks[2] (id 3): dangling assignee: no worker @nobody"]
    if name == "duplicate ids":
        data["tasks"][3]["id"] = data["tasks"][2]["id"]
        data["workers"].append(dict(data["workers"][0]))
        return data, [
            "problem: workers[4] (@alice): duplicate worker id @alice (also workers[0])",
            "problem: tasks[3] (id 3): duplicate task id 3 (also tasks[2])",
        ]
    if name == "all at once":
        data["tasks"][0]["status"] = "done"
        data["tasks"][1]["parent_id"] = 404
        data["tasks"][2]["assigned_to"] = "@nobody"
        return data, [
            "problem: tasks[0] (id 1): unknown status 'done'",
            "problem: tasks[1] (id 2): dangling parent: no task 404",
            "problem: tasks[2] (id 3): dangling assignee: no worker @nobody",
        ]
    raise AssertionError(name)


@pytest.mark.parametrize(
    "case",
    [
        "unreadable json",
        "unknown status",
        "dangling parent",
        "dangling assignee",
        "duplicate ids",
        "all at once",
    ],
)
@pytest.mark.parametrize("dry_run", [False, True])
def test_malformed_input_exits_non_zero_with_one_line_per_problem_and_writes_nothing(
    case: str,
    dry_run: bool,
    tmp_path: Path,
    db_url: str,
    db: psycopg.Connection[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data, expected = _case(case)
    folder = _bad_folder(tmp_path, data)
    monkeypatch.setenv("DATABASE_URL", db_url)
    before = counts(db)
    code = main(["import-cli", *map(str, import_args(folder)), *(["--dry-run"] if dry_run else [])])
    captured = capsys.readouterr()
    err = captured.err
    assert code == 1
    if case == "all at once":  # the summary table counts them too
        assert re.search(r"^tasks +\d+ +0 +3$", captured.out, re.MULTILINE), captured.out
    problems = [line for line in err.splitlines() if line.startswith("problem:")]
    assert len(problems) == len(expected), err
    for line, start in zip(problems, expected, strict=True):
        assert line.startswith(start), err
    assert "nothing was written" in err
    assert counts(db) == before


def normalised_timestamp_warnings(sim: CliSimulation) -> list[str]:
    """The warning each space-separated timestamp of ``realistic()`` must get (item and value)."""
    lines = [
        f"warning: tasks[{i}] (id {task['id']}): updated_at {task['updated_at']!r} read as "
        f"{task['updated_at'].replace(' ', 'T')}"
        for i, task in enumerate(sim.tasks)
        if " " in task["updated_at"]
    ]
    lines += [
        f"warning: audit_logs[{i}] (id {entry['id']}): timestamp {entry['timestamp']!r} read as "
        f"{entry['timestamp'].replace(' ', 'T')}"
        for i, entry in enumerate(sim.audit_logs)
        if " " in entry["timestamp"]
    ]
    assert len(lines) == 2  # realistic() writes one of each
    return lines


def test_dry_run_reports_what_would_be_imported_and_writes_nothing(
    tmp_path: Path,
    db_url: str,
    db: psycopg.Connection[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = realistic()
    folder = sim.write(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    before = counts(db)
    code = main(["import-cli", *map(str, import_args(folder)), "--dry-run"])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0
    for line in normalised_timestamp_warnings(sim):
        assert line in captured.err, captured.err
    assert "would create" in out and "dry run: nothing was written" in out
    assert re.search(rf"^tasks +{len(sim.tasks)} +0 +0$", out, re.MULTILINE), out
    assert re.search(rf"^audit entries +{len(sim.audit_logs)} +0 +0$", out, re.MULTILINE), out
    assert counts(db) == before


def test_a_project_slug_taken_in_the_tenant_is_refused_before_anything_is_written(
    tmp_path: Path,
    db_url: str,
    db: psycopg.Connection[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = realistic().write(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["import-cli", *map(str, import_args(folder))]) == 0
    before = counts(db)
    # The same projects from a different file (the CLI was used after the first import).
    data = json.loads((folder / "data.json").read_text())
    data["tasks"][0]["title"] = "Changed since"
    (folder / "data.json").write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["import-cli", *map(str, import_args(folder))]) == 1
    err = capsys.readouterr().err
    assert "problem: project website: a project with this slug already exists" in err
    assert "created by an import of a different version of data.json" in err
    assert counts(db) == before


@pytest.mark.parametrize(
    ("sub", "extra"),
    [
        ("bob-sso-sub", ["--user", "@bob=bob-sso-sub"]),  # bound to his subject at import
        ("bob-sso-sub", ["--email", "@bob=robert.b@example.test"]),  # his verified email
    ],
)
def test_an_imported_human_is_claimed_by_a_later_sso_login_with_the_mapped_subject_or_email(
    sub: str, extra: list[str], tmp_path: Path, db_url: str, services: Services, issuer: Any
) -> None:
    folder = realistic().write(tmp_path)
    run = run_import(db_url, *import_args(folder, *extra))
    assert run.code == 0, run.err
    assert "no SSO login can claim" not in run.out
    services.start()
    token = issuer.token(
        sub, tenant_id=TENANT, email="robert.b@example.test", name="Bob", email_verified=True
    )
    with httpx.Client(
        base_url=f"http://127.0.0.1:{services.tasks_port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30.0,
    ) as bob:
        slugs = {p["slug"] for p in all_pages(bob, "/api/projects")}
        assert {"website", "infra", "default"} <= slugs  # the imported memberships are his


def test_two_runs_at_once_write_everything_once(tmp_path: Path, db_url: str, clean_db: str) -> None:
    folder = large(tasks=800, audit_entries=2500).write(tmp_path)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda _: run_import(db_url, *import_args(folder)), range(2)))
    assert [r.code for r in runs] == [0, 0], [r.err for r in runs]
    assert run_import(clean_db, *import_args(folder)).code == 0
    assert snapshot(db_url) == snapshot(clean_db)
