"""How soon is a write's audit entry readable? (issue 17, item 6)

    uv run python bench/audit_freshness.py [--writes 200] [--modes serve-all,split]
        [--wakeup on,off] [--interval 1]

For each mode (``taskflow serve all`` in one process; tasks, audit and auth-verifier split in
their own uvicorn processes) and each ``OUTBOX_WAKEUP`` value (``off`` is the relay as it was
before issue 17: polling every ``OUTBOX_RELAY_INTERVAL`` only), on a fresh database
(``taskflow_freshness``): ``--writes`` task creations one after another, each followed by
``GET /api/tasks/{id}/audit`` on the audit service every 5 ms until the entry is there.
The freshness of a write is the time from its response (fully read) to the first answer that
holds its entry; a random pause of up to one poll interval between writes keeps them out of step
with the relay's poll (without it, each write would follow the previous poll closely and wait a
whole interval). Prints p50 / p90 / p99 / max per (mode, wake-up) and writes
``bench/results/<stamp>-freshness/freshness.{json,md}`` (``latest-freshness.md`` beside it).
Goal: p99 ≤ 100 ms with the wake-up on, in both modes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.load import percentile
from bench.procs import BenchError, ProcessRegistry, free_port, run_exclusively, wait_until_healthy
from bench.seed import bench_token
from bench.stack import REPO_ROOT, SERVICE_NAMES, Stack, admin_url, migrate, recreate_database
from tests.support.issuer import TestIssuer

RESULTS = REPO_ROOT / "bench" / "results"
DATABASE = "taskflow_freshness"
MODES = ("serve-all", "split")
GOAL_MS = 100.0
GIVE_UP = 10.0  # seconds: an entry not readable by then counts as this
# Between two reads of a history still empty: reads back to back would load the very processes
# whose delivery is measured (in serve all, the relay shares the event loop with every read).
READ_PAUSE = 0.005


def log(message: str) -> None:
    print(f"[freshness {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


@dataclass
class Result:
    mode: str
    wakeup: str
    interval: float
    samples_ms: list[float]

    def row(self) -> dict[str, Any]:
        s = self.samples_ms
        return {
            "mode": self.mode,
            "wakeup": self.wakeup,
            "interval_s": self.interval,
            "writes": len(s),
            "p50_ms": round(percentile(s, 50), 1),
            "p90_ms": round(percentile(s, 90), 1),
            "p99_ms": round(percentile(s, 99), 1),
            "max_ms": round(max(s), 1) if s else 0.0,
        }


def start(mode: str, registry: ProcessRegistry, stack: Stack) -> tuple[str, str, list[Any]]:
    """Start ``mode``; (tasks URL, audit URL, processes)."""
    if mode == "serve-all":
        port = free_port()
        env = {
            "DATABASE_URL": stack.database_url,
            "SSO_URL": stack.issuer.url,
            "JWKS_URL": stack.issuer.jwks_url,
            "TASKS_URL": "",  # unset: serve all points the services at its own port
            "AUDIT_URL": "",
            "AUTH_VERIFIER_URL": "",
            "LOG_FORMAT": "json",
            "RATE_LIMIT_PER_MINUTE": "0",
            "ENV": "benchmark",
        }
        argv = [sys.executable, "-m", "taskflow_cli.main", "serve", "all", "--host", "127.0.0.1"]
        managed = registry.start("serve-all", [*argv, "--port", str(port)], env=env, cwd=REPO_ROOT)
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(managed, f"{url}/health/ready", timeout=60)
        return url, url, [managed]
    stack.start_services(SERVICE_NAMES)
    managed = [stack.services[n].managed for n in SERVICE_NAMES]
    return stack.services["tasks"].url, stack.services["audit"].url, managed


def measure(tasks_url: str, audit_url: str, token: str, writes: int, pause: float) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    samples: list[float] = []
    with (
        httpx.Client(base_url=tasks_url, headers=headers, timeout=30) as tasks,
        httpx.Client(base_url=audit_url, headers=headers, timeout=30) as audit,
    ):
        projects = tasks.get("/api/projects")
        if projects.status_code != 200:
            raise BenchError(f"GET /api/projects → {projects.status_code}: {projects.text[:200]}")
        project_id = next(p["id"] for p in projects.json() if p["is_default"])
        for n in range(writes + 5):  # the first 5 warm up (connections, caches)
            time.sleep(random.uniform(0, pause))
            created = tasks.post(f"/api/projects/{project_id}/tasks", json={"title": f"f-{n}"})
            answered = time.perf_counter()
            if created.status_code != 201:
                raise BenchError(f"create → {created.status_code}: {created.text[:200]}")
            path = f"/api/tasks/{created.json()['id']}/audit"
            while True:
                read = audit.get(path)
                if read.status_code != 200:
                    raise BenchError(f"GET {path} → {read.status_code}: {read.text[:200]}")
                waited = time.perf_counter() - answered
                if read.json() or waited > GIVE_UP:
                    break
                time.sleep(READ_PAUSE)
            if n >= 5:
                samples.append(waited * 1000)
    return samples


def run_one(
    mode: str, wakeup: str, args: argparse.Namespace, registry: ProcessRegistry, issuer: Any
) -> Result:
    database_url = recreate_database(admin_url(), DATABASE)
    migrate(database_url, registry.log_dir)
    os.environ["OUTBOX_WAKEUP"] = wakeup  # inherited by every process started below
    os.environ["OUTBOX_RELAY_INTERVAL"] = str(args.interval)
    stack = Stack(registry, database_url, pin=False)
    stack.issuer = issuer
    tasks_url, audit_url, processes = start(mode, registry, stack)
    try:
        samples = measure(tasks_url, audit_url, bench_token(issuer), args.writes, args.interval)
    finally:
        for managed in processes:
            if managed is not None:
                managed.stop()
    result = Result(mode, wakeup, args.interval, samples)
    log(f"{mode}, wake-up {wakeup}: {result.row()}")
    return result


def report(results: list[Result]) -> str:
    lines = [
        "| mode | OUTBOX_WAKEUP | poll interval | writes | p50 ms | p90 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        r = result.row()
        lines.append(
            f"| {r['mode']} | {r['wakeup']} | {r['interval_s']:g} s | {r['writes']} |"
            f" {r['p50_ms']} | {r['p90_ms']} | {r['p99_ms']} | {r['max_ms']} |"
        )
    lines.append(
        f"\nFreshness: from a create's response to the first `GET /api/tasks/{{id}}/audit` of the"
        f" audit service that holds its entry (a read every 5 ms). Goal: p99 ≤ {GOAL_MS:g} ms."
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--writes", type=int, default=200, help="measured writes per run")
    parser.add_argument("--modes", default=",".join(MODES), help="serve-all,split")
    parser.add_argument("--wakeup", default="on,off", help="OUTBOX_WAKEUP values to run")
    parser.add_argument("--interval", type=float, default=1.0, help="OUTBOX_RELAY_INTERVAL, s")
    args = parser.parse_args(argv)
    args.modes = [m for m in args.modes.split(",") if m]
    args.wakeup = [w for w in args.wakeup.split(",") if w]
    if unknown := set(args.modes) - set(MODES):
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    if unknown := set(args.wakeup) - {"on", "off"}:
        parser.error(f"--wakeup takes on and/or off, not {', '.join(sorted(unknown))}")
    if not 1 <= args.writes <= 10_000:
        parser.error("--writes must be in [1, 10000]")
    return args


def run(args: argparse.Namespace) -> int:
    started = datetime.now(UTC)
    work_dir = RESULTS / f"{started:%Y%m%dT%H%M%SZ}-freshness"
    results = []
    with ProcessRegistry(work_dir / "logs") as registry:
        issuer = TestIssuer().start()
        try:
            for mode in args.modes:
                for wakeup in args.wakeup:
                    results.append(run_one(mode, wakeup, args, registry, issuer))
        finally:
            issuer.stop()
    text = report(results)
    (work_dir / "freshness.json").write_text(
        json.dumps([{**r.row(), "samples_ms": r.samples_ms} for r in results], indent=2) + "\n"
    )
    (work_dir / "freshness.md").write_text(text + "\n")
    (RESULTS / "latest-freshness.md").write_text(text + "\n")
    print()
    print(text)
    print(f"\nresults: {work_dir / 'freshness.md'}; logs in {work_dir / 'logs'}")
    woken = [r for r in results if r.wakeup == "on"]
    return 0 if all(r.row()["p99_ms"] <= GOAL_MS for r in woken) else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_exclusively("audit_freshness", lambda: run(args), say=log)


if __name__ == "__main__":
    sys.exit(main())
