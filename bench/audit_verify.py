"""Time and memory of verifying one long project history (``taskflow audit verify``).

    uv run python bench/audit_verify.py [--entries 300000] [--admin-url URL]

Creates a fresh database ``taskflow_verify_bench`` on the PostgreSQL of ``--admin-url``
(default ``$DATABASE_URL``, else postgres@127.0.0.1:5432), migrates it, writes ``--entries``
hash-chained audit entries of one project with the bench's own chain writer (COPY, as
``--scale large`` does), then runs ``taskflow audit verify --project-id 1`` as a real
process and reports its wall time and peak resident memory, plus the cost of one
``entry_hash``. GET /api/audit/verify runs the same function (``verify_project_chain``).

Measured 2026-12-03 on the shared 2-core machine, 300,000 entries (wall s / peak RSS / µs per
``entry_hash``): before the read was streamed (``ed025f7``) 26.5 s / 898 MB / 30.6 µs; streamed,
with the cheaper canonical encoding, 17.6 s / 67 MB / 17.8 µs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from taskflow_audit.chain import GENESIS_HASH, entry_hash  # noqa: E402
from taskflow_cli.stack import migrate  # noqa: E402

from bench.large import AUDIT_COPY_COLUMNS, _copy_batch  # noqa: E402
from bench.stack import admin_url, recreate_database  # noqa: E402

DATABASE = "taskflow_verify_bench"


def seed(url: str, entries: int) -> None:
    """``entries`` entries of project 1 (three per task: created, started, progress)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    last_id, last_hash = 0, GENESIS_HASH
    with psycopg.connect(url) as conn:
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY audit.entries ({AUDIT_COPY_COLUMNS}) FROM STDIN") as copy,
        ):
            tasks = entries // 3
            for first in range(1, tasks + 1, 10_000):
                batch = [
                    (i, 1, start + timedelta(seconds=i), f"Task {i}")
                    for i in range(first, min(first + 10_000, tasks + 1))
                ]
                last_id, last_hash = _copy_batch(
                    copy, batch, last_id, last_hash, 1, "@bench", entry_hash, start
                )
        conn.execute(
            "UPDATE audit.chain_head SET last_id = %s, last_hash = %s WHERE id = 1",
            (last_id, last_hash),
        )


def hash_cost(sample: int = 20_000) -> float:
    """Microseconds per ``entry_hash`` of a typical entry (a status change)."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    entries = [
        {
            "id": i,
            "event_id": uuid.uuid4(),
            "tenant_id": "bench",
            "project_id": 1,
            "entity_type": "task",
            "entity_id": i,
            "action": "status_changed",
            "actor_id": 1,
            "actor_handle": "@bench",
            "actor_type": "human",
            "details": {"before": "pending", "after": "in_progress"},
            "created_at": at + timedelta(seconds=i),
            "recorded_at": at,
        }
        for i in range(1, sample + 1)
    ]
    started = time.perf_counter()
    for entry in entries:
        entry_hash(GENESIS_HASH, entry)
    return (time.perf_counter() - started) / sample * 1e6


def _peak_rss_kb(pid: int) -> int:
    """The process's resident high-water mark (``VmHWM``), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def verify(url: str) -> tuple[str, int, float, float]:
    """Run the CLI's project check; its output, exit status, wall seconds and peak RSS (MB).

    The peak is polled from /proc (rusage would count the forked copy of this process, which
    holds the seeded data, before the child execs)."""
    started = time.perf_counter()
    peak_kb = 0
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "taskflow_cli.main", "audit", "verify", "--project-id", "1"],
            env={**os.environ, "DATABASE_URL": url, "LOG_FORMAT": "json"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        while proc.poll() is None:
            peak_kb = max(peak_kb, _peak_rss_kb(proc.pid))
            time.sleep(0.05)
        wall = time.perf_counter() - started
        out.seek(0)
        return out.read().strip(), proc.returncode, wall, peak_kb / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=300_000)
    parser.add_argument("--admin-url", default=admin_url())
    args = parser.parse_args()

    url = recreate_database(args.admin_url, DATABASE)
    migrate(url)
    started = time.perf_counter()
    seed(url, args.entries)
    print(f"seeded {args.entries:,} entries in {time.perf_counter() - started:.0f} s")

    output, returncode, wall, peak_mb = verify(url)
    print(output[-2000:])
    print("| entries | wall s | peak RSS MB | µs/entry | entry_hash µs |")
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {args.entries:,} | {wall:.1f} | {peak_mb:.0f} | {wall / args.entries * 1e6:.0f}"
        f" | {hash_cost():.1f} |"
    )
    return returncode


if __name__ == "__main__":
    raise SystemExit(main())
