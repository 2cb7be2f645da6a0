"""How long ``taskflow import-cli`` takes on a large Phase I CLI folder (issue 7).

    uv run python bench/import_bench.py [--tasks 10000] [--audit 50000] [--admin-url URL]

Generates a ``.taskflow`` folder the way the CLI writes one (tests/integration/importer/
cli_data.py: 20 projects, 15 workers, a third of the tasks subtasks, the audit history of
starts, progress notes and completions), creates a fresh database ``taskflow_import_bench`` on
the PostgreSQL of ``--admin-url`` (default ``$TEST_DATABASE_URL``), migrates it, then times
the import as a real process, and a second run (which must create nothing). Results go to
bench/results/<stamp>-import/ (JSON + markdown) and bench/results/latest-import.md.

Measured 2026-11-26 on the shared 2-core machine (load average 8 to 11 from other work):
10,000 tasks + 50,000 audit entries (19.7 MB data.json) imported in 33 to 40 s; the second
run, which creates nothing, in 8 to 13 s (reading and planning the file, about 4 s of it
Python start-up under that load).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from taskflow_cli.stack import migrate  # noqa: E402

from tests.integration.importer.cli_data import large  # noqa: E402

DATABASE = "taskflow_import_bench"


def database_url(admin_url: str, name: str) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def fresh_database(admin_url: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    url = database_url(admin_url, DATABASE)
    migrate(url)
    return url


def timed_import(url: str, folder: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "taskflow_cli.main",
            "import-cli",
            str(folder),
            "--tenant",
            "bench",
            "--owner",
            "bench-owner",
            "--utc-offset",
            "+00:00",
            "--no-progress",
        ],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
    )
    return time.perf_counter() - started, proc


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        out = {}
        for table in ("workers", "projects", "project_members", "tasks", "outbox", "import_ledger"):
            row = conn.execute(f"SELECT count(*) FROM tasks.{table}").fetchone()
            out[table] = int(row[0]) if row else 0
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--audit", type=int, default=50_000)
    parser.add_argument(
        "--admin-url",
        default=os.environ.get(
            "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="taskflow-import-bench-") as tmp:
        started = time.perf_counter()
        sim = large(tasks=args.tasks, audit_entries=args.audit)
        folder = sim.write(Path(tmp))
        size = (folder / "data.json").stat().st_size
        generated = time.perf_counter() - started
        url = fresh_database(args.admin_url)
        first_s, first = timed_import(url, folder)
        if first.returncode != 0:
            print(first.stdout, first.stderr, sep="\n", file=sys.stderr)
            return 1
        after_first = counts(url)
        second_s, second = timed_import(url, folder)
        after_second = counts(url)

    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "tasks": len(sim.tasks),
        "audit_entries": len(sim.audit_logs),
        "data_json_bytes": size,
        "generate_seconds": round(generated, 2),
        "import_seconds": round(first_s, 2),
        "rerun_seconds": round(second_s, 2),
        "rerun_exit": second.returncode,
        "rerun_created_nothing": after_first == after_second and "nothing new" in second.stdout,
        "rows": after_first,
        "summary": first.stdout.strip().splitlines(),
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = ROOT / "bench" / "results" / f"{stamp}-import"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "result.json").write_text(json.dumps(result, indent=2))
    markdown = "\n".join(
        [
            f"# taskflow import-cli benchmark ({result['when']})",
            "",
            f"- input: {result['tasks']} tasks, {result['audit_entries']} audit entries, "
            f"data.json {size / 1e6:.1f} MB",
            f"- first import: **{result['import_seconds']} s**",
            f"- second run (nothing to do): {result['rerun_seconds']} s, created nothing: "
            f"{result['rerun_created_nothing']}",
            f"- rows: {json.dumps(after_first)}",
            "",
            "```",
            *result["summary"],
            "```",
            "",
        ]
    )
    (out_dir / "result.md").write_text(markdown)
    (ROOT / "bench" / "results" / "latest-import.md").write_text(markdown)
    print(markdown)
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
