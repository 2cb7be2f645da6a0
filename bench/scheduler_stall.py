"""Does catching up overdue recurring tasks stall a service? (issue 15, "Done when" line 2)

    uv run python bench/scheduler_stall.py [--tasks 1000] [--interval 2] [--max-wait 90]
        [--modes serve-all,split]

For each mode, a fresh database (``taskflow_stall``, ``taskflow migrate``), the test SSO issuer,
and real processes with ``SCHEDULER_INTERVAL=--interval``: ``taskflow serve all`` (one process),
then split (tasks, audit and auth-verifier in their own uvicorn processes). Every process's
``/health`` is polled every 10 ms (2 s timeout) and its ``/metrics`` every second, from a quiet
baseline (as long as the lag gauge's window) before the seed until three scheduler intervals
after the last chain caught up, or until ``--max-wait`` if they never do. The seed is
``--tasks`` minutely recurring tasks (trigger on_due_date) due in 1900 and one due in year 263,
inserted as rows in one transaction while the service runs, so the next round finds them all
due. Reports, from the seed on: p50/p99/max of ``/health``, the requests slower than 100 ms or
failed, the worst event-loop lag each process exported, how many of its lag probes found the
loop held over 50 ms, and its ``event_loop_lag`` warnings; and checks that each chain got
exactly one new occurrence: due after the check, within a minute of its spawn, on its grid.
Without the lag metrics (the code before issue 15) those columns say n/a.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from bench.load import percentile
from bench.procs import (
    BenchError,
    Managed,
    ProcessRegistry,
    free_port,
    run_exclusively,
    wait_until_healthy,
)
from bench.seed import bench_token
from bench.stack import (
    REPO_ROOT,
    SERVICE_NAMES,
    Stack,
    admin_url,
    migrate,
    recreate_database,
)
from tests.support.issuer import TestIssuer
from tests.support.overdue import caught_up, check_chains, seed_overdue_series

RESULTS = REPO_ROOT / "bench" / "results"
DATABASE = "taskflow_stall"
HANG = 2.0  # a /health request unanswered this long counts as failed
SLOW = 0.1  # the goal: /health under 100 ms (p99)
POLL_EVERY = 0.01
LAG_THRESHOLD = 0.05  # the services warn above it (taskflow_core.metrics.LAG_THRESHOLD)
LAG_WINDOW = 10.0  # what taskflow_event_loop_lag_seconds looks back over
MODES = ("serve-all", "split")


def log(message: str) -> None:
    print(f"[stall {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


# --- watching the processes -------------------------------------------------------------------


@dataclass
class Sample:
    at: float  # time.monotonic() when sent
    seconds: float | None  # None: failed or unanswered within HANG


@dataclass
class Scrape:
    at: float
    worst_lag: float  # taskflow_event_loop_lag_seconds: the worst of the last LAG_WINDOW
    probes: float  # taskflow_event_loop_lag_probe_seconds_count
    probes_over: float  # probes that found the loop held longer than LAG_THRESHOLD


def parse_lag(text: str) -> tuple[float, float, float] | None:
    """(worst lag, probes, probes over the threshold) from a /metrics page, if it has them."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "taskflow_event_loop_lag_seconds":
                found["worst"] = sample.value
            elif sample.name == "taskflow_event_loop_lag_probe_seconds_count":
                found["probes"] = sample.value
            elif (
                sample.name == "taskflow_event_loop_lag_probe_seconds_bucket"
                and float(sample.labels["le"]) == LAG_THRESHOLD
            ):
                found["within"] = sample.value
    if len(found) < 3:
        return None  # a version without the lag metrics
    return found["worst"], found["probes"], found["probes"] - found["within"]


@dataclass
class Watcher:
    """Polls one process's /health (every 10 ms) and its /metrics (every 1 s)."""

    name: str
    url: str
    samples: list[Sample] = field(default_factory=list)
    scrapes: list[Scrape] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._health, daemon=True),
            threading.Thread(target=self._metrics, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(HANG + 2)

    def _health(self) -> None:
        with httpx.Client(timeout=HANG) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                started = time.perf_counter()
                try:
                    ok = client.get(f"{self.url}/health").status_code == 200
                    took = time.perf_counter() - started if ok else None
                except httpx.HTTPError:
                    took = None
                self.samples.append(Sample(sent, took))
                time.sleep(POLL_EVERY)

    def _metrics(self) -> None:
        with httpx.Client(timeout=HANG) as client:
            while not self._stop.wait(1.0):
                at = time.monotonic()
                try:
                    lag = parse_lag(client.get(f"{self.url}/metrics").text)
                except httpx.HTTPError:
                    continue
                if lag is not None:
                    self.scrapes.append(Scrape(at, *lag))

    def stats(self, since: float) -> dict[str, Any]:
        window = [s for s in self.samples if s.at >= since]
        answered = [s.seconds for s in window if s.seconds is not None]
        before = [s for s in self.scrapes if s.at < since]
        after = [s for s in self.scrapes if s.at >= since]
        lag: dict[str, Any] = {"worst_lag_ms": None, "probes_over": None}
        if before and after:
            lag = {
                "worst_lag_ms": 1000 * max(s.worst_lag for s in after),
                "probes_over": int(after[-1].probes_over - before[-1].probes_over),
            }
        return {
            "process": self.name,
            "requests": len(window),
            "failed": len(window) - len(answered),
            "slow": sum(1 for s in answered if s > SLOW),
            "p50_ms": 1000 * percentile(answered, 50),
            "p99_ms": 1000 * percentile([s.seconds or HANG for s in window], 99),
            "max_ms": 1000 * max((s.seconds or HANG for s in window), default=0.0),
            **lag,
        }


def lag_warnings(managed: Managed, since: datetime) -> list[dict[str, Any]]:
    """The event_loop_lag warnings ``managed`` logged from ``since`` on."""
    try:
        lines = managed.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        if '"event_loop_lag"' not in line:
            continue
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if datetime.fromisoformat(record["timestamp"]) >= since:
                found.append(record)
    return found


# --- one mode ---------------------------------------------------------------------------------


@dataclass
class ModeResult:
    mode: str
    caught_up_s: float | None
    processes: list[dict[str, Any]]
    chains: dict[str, Any]


def start_processes(
    mode: str, registry: ProcessRegistry, stack: Stack
) -> tuple[str, dict[str, Managed], dict[str, str]]:
    """Start ``mode``; return the tasks URL, the processes and each one's URL."""
    if mode == "serve-all":
        port = free_port()
        env = {
            "DATABASE_URL": stack.database_url,
            "SSO_URL": stack.issuer.url,
            "JWKS_URL": stack.issuer.jwks_url,
            # Unset (empty): serve all points the services at its own port.
            "TASKS_URL": "",
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
        return url, {"serve-all": managed}, {"serve-all": url}
    stack.start_services(SERVICE_NAMES)
    managed_by_name = {n: stack.services[n].managed for n in SERVICE_NAMES}
    return (
        stack.services["tasks"].url,
        {n: m for n, m in managed_by_name.items() if m is not None},
        {n: stack.services[n].url for n in SERVICE_NAMES},
    )


def default_project(tasks_url: str, token: str) -> int:
    resp = httpx.get(
        f"{tasks_url}/api/projects", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    if resp.status_code != 200:
        raise BenchError(f"GET /api/projects → {resp.status_code}: {resp.text[:200]}")
    return int(next(p["id"] for p in resp.json() if p["is_default"]))


def run_mode(
    mode: str, args: argparse.Namespace, registry: ProcessRegistry, issuer: Any
) -> ModeResult:
    database_url = recreate_database(admin_url(), DATABASE)
    migrate(database_url, registry.log_dir)
    stack = Stack(registry, database_url, pin=False)
    stack.issuer = issuer
    tasks_url, processes, urls = start_processes(mode, registry, stack)
    try:
        project_id = default_project(tasks_url, bench_token(issuer))
        watchers = [Watcher(name, url) for name, url in urls.items()]
        for watcher in watchers:
            watcher.start()
        # A quiet baseline as long as the lag gauge's window: what it shows after the seed
        # is the catch-up's, not the start's.
        time.sleep(LAG_WINDOW + 1)
        with psycopg.connect(database_url, autocommit=True) as conn:
            seeded_at, seeded_wall = time.monotonic(), datetime.now(UTC)
            series = seed_overdue_series(conn, project_id, args.tasks)
            log(f"{mode}: seeded {len(series.source_ids)} overdue recurring tasks")
            done = 0
            while time.monotonic() - seeded_at < args.max_wait:
                done = caught_up(conn, series)
                if done == len(series.source_ids):
                    break
                time.sleep(0.2)
            caught_up_s = time.monotonic() - seeded_at if done == len(series.source_ids) else None
            log(
                f"{mode}: {done}/{len(series.source_ids)} caught up"
                + (f" in {caught_up_s:.1f}s" if caught_up_s is not None else " (gave up)")
            )
            if caught_up_s is not None:
                time.sleep(3 * args.interval)  # three more rounds
            for watcher in watchers:
                watcher.stop()
            chains = check_chains(conn, series)
        rows = []
        for watcher in watchers:
            row = watcher.stats(seeded_at)
            row["lag_warnings"] = lag_warnings(processes[watcher.name], seeded_wall)
            rows.append(row)
        return ModeResult(mode, caught_up_s, rows, chains)
    finally:
        for managed in processes.values():
            managed.stop()


def describe_warnings(warnings: list[dict[str, Any]]) -> str:
    """How many lag warnings, and how many of them were code holding the loop (the thread
    used at least half the lag in CPU) rather than the host not running the process."""
    if not warnings:
        return "none"
    held = [w for w in warnings if (w.get("cpu_ms") or 0) >= w["lag_ms"] / 2]
    text = f"{len(warnings)}, {len(held)} held by code"
    if held:
        text += f" (worst {max(w['lag_ms'] for w in held):.0f} ms)"
    return text


def report(results: list[ModeResult], args: argparse.Namespace) -> str:
    lines = [
        f"# Scheduler catch-up vs /health ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"{args.tasks} minutely recurring tasks due in 1900 + 1 due in year 263, "
        f"SCHEDULER_INTERVAL={args.interval:g}s. /health polled every {POLL_EVERY * 1000:.0f} ms; "
        f"figures from the seed until three intervals after the catch-up (at most "
        f"{args.max_wait:.0f} s); a request unanswered after {HANG:.0f} s counts as failed, at "
        f"{HANG:.0f} s. Loop lag from the process's own /metrics (worst over its "
        f"{LAG_WINDOW:.0f} s window; probes that found it held over "
        f"{LAG_THRESHOLD * 1000:.0f} ms) and its event_loop_lag warnings: held by code when the "
        "loop's thread used at least half the lag in CPU, else the host did not run it.",
        "",
        "| mode | process | caught up | requests | p50 ms | p99 ms | max ms | > 100 ms | failed"
        " | worst loop lag ms | probes > 50 ms | lag warnings | chains |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for result in results:
        caught = f"{result.caught_up_s:.1f} s" if result.caught_up_s is not None else "never"
        chains = (
            f"{result.chains['chains']}, one new occurrence each"
            if result.chains["ok"]
            else "; ".join(result.chains["problems"][:2]) or "none"
        )
        for row in result.processes:
            lag = "n/a" if row["worst_lag_ms"] is None else f"{row['worst_lag_ms']:.0f}"
            over = "n/a" if row["probes_over"] is None else str(row["probes_over"])
            warnings = describe_warnings(row["lag_warnings"])
            lines.append(
                f"| {result.mode} | {row['process']} | {caught} | {row['requests']} "
                f"| {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['max_ms']:.0f} "
                f"| {row['slow']} | {row['failed']} | {lag} | {over} | {warnings} | {chains} |"
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--tasks", type=int, default=1000, help="tasks due in 1900 (plus one in 263)"
    )
    parser.add_argument("--interval", type=float, default=2.0, help="SCHEDULER_INTERVAL, seconds")
    parser.add_argument(
        "--max-wait", type=float, default=90.0, help="seconds to wait for the catch-up"
    )
    parser.add_argument("--modes", default=",".join(MODES), help="serve-all,split")
    args = parser.parse_args(argv)
    args.modes = [m for m in args.modes.split(",") if m]
    if unknown := set(args.modes) - set(MODES):
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    if not 1 <= args.tasks <= 100_000:
        parser.error("--tasks must be in [1, 100000]")
    return args


def run(args: argparse.Namespace) -> int:
    started = datetime.now(UTC)
    work_dir = RESULTS / f"{started:%Y%m%dT%H%M%SZ}-stall"
    os.environ["SCHEDULER_INTERVAL"] = str(args.interval)  # inherited by every process
    results = []
    with ProcessRegistry(work_dir / "logs") as registry:
        issuer = TestIssuer().start()
        try:
            for mode in args.modes:
                results.append(run_mode(mode, args, registry, issuer))
        finally:
            issuer.stop()
    text = report(results, args)
    (work_dir / "stall.json").write_text(
        json.dumps([r.__dict__ for r in results], indent=2, default=str) + "\n"
    )
    (work_dir / "stall.md").write_text(text + "\n")
    (RESULTS / "latest-stall.md").write_text(text + "\n")
    print()
    print(text)
    print(f"\nresults: {work_dir / 'stall.md'}; logs in {work_dir / 'logs'}")
    fine = all(
        r.caught_up_s is not None
        and r.chains["ok"]
        and all(p["failed"] == 0 and p["p99_ms"] < SLOW * 1000 for p in r.processes)
        for r in results
    )
    return 0 if fine else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_exclusively("scheduler_stall", lambda: run(args), say=log)


if __name__ == "__main__":
    sys.exit(main())
