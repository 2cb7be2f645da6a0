"""``taskflow import-cli PATH [--tenant T] [--owner SUB] [--dry-run] [--utc-offset ±HH:MM]``.

Exit status: 0 imported (or nothing new to import), 1 problems in the input or with the
database's existing rows (one line each, nothing written), 2 usage or configuration errors,
3 the database failed during the run (re-run it: finished chunks are kept).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TextIO

import psycopg
from taskflow_core.config import DEFAULT_TENANT, ConfigError, Settings
from taskflow_core.db import normalize_database_url

from .outcome import Outcome, Progress, RunContext
from .plan import ImportOptions, Plan, build_plan
from .report import ProgressBar, problem_lines, summary_table
from .source import HANDLE_RE, Problem, locate, read_data
from .timezone import LocalTime, parse_offset
from .write import ImportConflict, Importer, connect

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_DATABASE = 0, 1, 2, 3
TENANT_MAX = 100  # projects.tenant_id varchar(100)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser(
        "import-cli",
        help="import a Phase I CLI .taskflow folder (projects, workers, tasks, audit history)",
        description="Import the Phase I CLI's .taskflow/data.json into the database named by "
        "DATABASE_URL. Safe to run again: a second run creates nothing, an interrupted run "
        "resumes.",
    )
    cmd.add_argument("path", type=Path, help="a .taskflow folder or its data.json")
    cmd.add_argument("--tenant", default=DEFAULT_TENANT, help="tenant to import into")
    cmd.add_argument("--owner", help="SSO subject (sub) of the user who will own the projects")
    cmd.add_argument(
        "--dry-run",
        action="store_true",
        help="report what would be imported and every problem; write nothing",
    )
    cmd.add_argument(
        "--utc-offset",
        help="offset of the CLI's local times, e.g. +02:00 (default: this machine's time zone)",
    )
    cmd.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="@HANDLE=SUB",
        help="map a CLI human to an SSO subject (repeatable)",
    )
    cmd.add_argument(
        "--email",
        action="append",
        default=[],
        metavar="@HANDLE=EMAIL",
        help="record a CLI human's email, so their SSO login can claim the worker (repeatable)",
    )
    cmd.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _handle_map(values: list[str], option: str, what: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for value in values:
        handle, sep, target = value.partition("=")
        if not sep or not HANDLE_RE.match(handle) or not target.strip():
            raise ConfigError(f"{option} {value!r}: expected @handle={what}")
        if what == "EMAIL" and "@" not in target.strip(" @"):
            raise ConfigError(f"{option} {value!r}: {target!r} is not an email address")
        mapping[handle] = target.strip()
    return mapping


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The command: parse, plan, preflight, write, report (see the module's exit statuses)."""
    out = out or sys.stdout
    err = err or sys.stderr
    settings = Settings.from_env()
    try:
        clock = LocalTime(fixed=parse_offset(args.utc_offset) if args.utc_offset else None)
        user_subs = _handle_map(args.user, "--user", "SSO_SUBJECT")
        user_emails = _handle_map(args.email, "--email", "EMAIL")
    except (ValueError, ConfigError) as exc:
        print(f"taskflow import-cli: {exc}", file=err)
        return EXIT_USAGE
    if not 0 < len(args.tenant) <= TENANT_MAX:
        print(f"taskflow import-cli: --tenant must be 1 to {TENANT_MAX} characters", file=err)
        return EXIT_USAGE
    if not args.dry_run and not settings.database_url:
        print("taskflow import-cli: DATABASE_URL is required (or use --dry-run)", file=err)
        return EXIT_USAGE
    if not args.dry_run and not args.owner:
        print(
            "taskflow import-cli: --owner SUB is required: the SSO subject of the user "
            "who will own the imported projects",
            file=err,
        )
        return EXIT_USAGE

    files = locate(args.path)
    if isinstance(files, Problem):
        print(files.line(), file=err)
        print("nothing was written", file=err)
        return EXIT_PROBLEMS
    data, problems = read_data(files)
    options = ImportOptions(args.tenant, files.fingerprint, user_subs, user_emails)
    plan = build_plan(data, options, clock)
    problems = problems + plan.problems
    for line in problem_lines(problems):
        print(line, file=err)
    fatal = [p for p in problems if p.fatal]
    print(f"source: {files.data_path} (sha256 {files.fingerprint[:12]})", file=out)
    print(f"timestamps: {clock.describe()}", file=out)
    for note in plan.notes:
        print(f"note: {note}", file=out)
    if fatal:
        print(summary_table(_offline_outcome(plan, fatal), dry_run=True), file=out)
        print(f"{len(fatal)} problem(s) in the input; nothing was written", file=err)
        return EXIT_PROBLEMS

    if not settings.database_url:
        outcome = _offline_outcome(plan)
        print(summary_table(outcome, dry_run=True), file=out)
        print(
            "dry run without DATABASE_URL: counts assume an empty database; nothing written",
            file=out,
        )
        return EXIT_OK
    progress: Progress = ProgressBar(err, enabled=not args.no_progress)
    ctx = RunContext(
        options=options,
        owner_sub=args.owner or "",
        source_path=str(files.data_path.resolve()),
        local_time=clock.describe(),
        settings=settings,
    )
    try:
        outcome, code = asyncio.run(
            _apply(settings.database_url, plan, ctx, progress, dry_run=args.dry_run)
        )
    except ConfigError as exc:
        print(f"taskflow import-cli: {exc}", file=err)
        return EXIT_USAGE
    except ImportConflict as exc:
        print(f"problem: {exc}", file=err)
        return EXIT_PROBLEMS
    except psycopg.Error as exc:
        print(f"taskflow import-cli: database error: {str(exc).strip().splitlines()[0]}", file=err)
        print("finished chunks are kept; run the same command again to resume", file=err)
        return EXIT_DATABASE
    for line in problem_lines(outcome.problems):
        print(line, file=err)
    for note in outcome.notes:
        print(f"note: {note}", file=out)
    print(
        f"tenant: {args.tenant}; owner: {args.owner or '(not given)'}"
        + (f" ({outcome.owner_handle})" if outcome.owner_handle else ""),
        file=out,
    )
    print(summary_table(outcome, dry_run=args.dry_run), file=out)
    if code != EXIT_OK:
        print(f"{len(outcome.problems)} problem(s); nothing was written", file=err)
        return code
    if args.dry_run:
        print("dry run: nothing was written", file=out)
    elif outcome.created_total == 0:
        when = outcome.previously_completed
        since = f" (completed {when.isoformat(timespec='seconds')})" if when else ""
        print(
            f"nothing new: this file was already imported into tenant {args.tenant}{since}",
            file=out,
        )
    else:
        print(f"imported: {outcome.created_total} rows created", file=out)
    return EXIT_OK


async def _apply(
    url: str, plan: Plan, ctx: RunContext, progress: Progress, *, dry_run: bool
) -> tuple[Outcome, int]:
    conn = await connect(normalize_database_url(url).conninfo)
    try:
        importer = Importer(conn, plan, ctx, progress)
        outcome = await importer.preflight()
        if outcome.problems:
            return outcome, EXIT_PROBLEMS
        if dry_run:
            return outcome, EXIT_OK
        return await importer.write(), EXIT_OK
    finally:
        await conn.close()


_CATEGORY_OF_WHERE = {
    "workers": "workers",
    "projects": "projects",
    "tasks": "tasks",
    "audit_logs": "audit entries",
    "--user": "workers",
}


def _offline_outcome(plan: Plan, problems: list[Problem] | None = None) -> Outcome:
    """Counts from the plan alone (no database): what an empty database would receive."""
    outcome = Outcome()
    outcome.tallies["workers"].created = len(plan.workers)
    outcome.tallies["projects"].created = len(plan.projects)
    outcome.tallies["memberships"].created = len(plan.members)
    outcome.tallies["tasks"].created = len(plan.tasks)
    outcome.tallies["audit entries"].created = len(plan.events)
    for problem in problems or []:
        prefix = problem.where.split("[", 1)[0].split(" ", 1)[0]
        category = _CATEGORY_OF_WHERE.get(prefix)
        if category is not None:
            outcome.tallies[category].problems += 1
    return outcome
