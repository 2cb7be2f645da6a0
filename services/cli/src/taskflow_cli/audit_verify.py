"""``taskflow audit verify [--project-id P] [--json]``: recompute the audit hash chain straight
from the database (an operator's check; it needs ``DATABASE_URL``, not a token).

Without ``--project-id`` every entry is verified in id order, and the last one against the
chain head; with it, only that project's entries and every link touching them. Exit status 0
when the chain is intact, 1 at the first broken link (its position is printed), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from psycopg.rows import dict_row
from taskflow_audit.chain import ChainReport
from taskflow_audit.store import SNAPSHOT, verify_project_chain, verify_whole_chain
from taskflow_core.config import ConfigError, Settings
from taskflow_core.db import normalize_database_url, retry_connect

from .embedded import running_dev_database


def add_audit_parser(sub: Any) -> None:
    audit = sub.add_parser("audit", help="audit trail tools")
    actions = audit.add_subparsers(dest="audit_command", required=True)
    verify = actions.add_parser(
        "verify", help="recompute the audit hash chain and report the first broken link"
    )
    verify.add_argument("--project-id", type=int, help="verify one project's entries only")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")


async def verify_database(database_url: str, project_id: int | None = None) -> ChainReport:
    """The chain report, read in one REPEATABLE READ snapshot (appends may run meanwhile)."""
    target = normalize_database_url(database_url)
    conn = await retry_connect(
        target.conninfo, prepare_threshold=target.prepare_threshold, row_factory=dict_row
    )
    async with conn, conn.transaction():
        await conn.execute(SNAPSHOT)
        if project_id is not None:
            return await verify_project_chain(conn, project_id)
        return await verify_whole_chain(conn)


def describe(report: ChainReport, project_id: int | None) -> str:
    scope = "audit chain" if project_id is None else f"audit chain of project {project_id}"
    if report.broken is None:
        return (
            f"{scope}: OK, {report.checked} entries verified"
            f" (last entry {report.last_id}, hash {report.last_hash[:16]}...)"
        )
    broken = report.broken
    return (
        f"{scope}: BROKEN at position {broken.position}"
        f" ({broken.reason}): {broken.message}; {report.checked} entries read"
    )


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    database_url = settings.database_url or running_dev_database(settings.data_dir)
    if not database_url:
        raise ConfigError(
            "DATABASE_URL is required for `taskflow audit verify` (with it unset, the database"
            f" of a running `taskflow dev` in {settings.data_dir} is used)"
        )
    if not settings.database_url:
        print("DATABASE_URL is unset: verifying the taskflow dev database", file=sys.stderr)
    report = asyncio.run(verify_database(database_url, args.project_id))
    if args.json:
        print(json.dumps({"project_id": args.project_id, **report.as_dict()}))
    else:
        print(describe(report, args.project_id))
    return 0 if report.ok else 1
