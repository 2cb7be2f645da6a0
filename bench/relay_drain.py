"""The audit pipeline's ceiling (issue 20): how fast the outbox relay drains a backlog into the
audit service, against how fast two tasks replicas write at full load.

    uv run python bench/relay_drain.py [--events 100000] [--entities 10000] [--duration 20]
        [--connections 32] [--skip-writes] [--skip-drain]

1. **Drain.** A fresh database (``taskflow_drain``, ``taskflow migrate``) gets ``--events``
   pending outbox events (task events shaped as the tasks service writes them, ``--entities``
   tasks of 50 projects, each task's events in order) with one ``INSERT ... SELECT``; then the
   audit service and **two** tasks replicas (each runs a relay, as in production) start, and the
   backlog is watched until empty. Rate = events / (last - first ``delivered_at``). Then
   checks: every event stored exactly once, each task's entries in outbox order, and
   ``taskflow audit verify`` (the whole hash chain) passes.
2. **Write ceiling.** On a fresh database, two tasks replicas (plus audit and auth-verifier),
   and one wrk per replica (``--connections`` each, ``--duration`` s) creating tasks: the sum
   of both replicas' creates/s is the write rate (one audit event each); the backlog left when
   the load stops and the time it takes to drain are reported too.

Goal: drain ≥ 3,000 events/s and at least twice the two-replica write rate. Nothing is pinned: every
process shares this machine's cores, as replicas on one host would. Results go to
``bench/results/<stamp>-drain/drain.{json,md}`` (``latest-drain.md`` beside it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg

from bench.procs import (
    BenchError,
    Managed,
    ProcessRegistry,
    free_port,
    run_exclusively,
    uvicorn_argv,
    wait_until_healthy,
)
from bench.seed import BENCH_TENANT, bench_token
from bench.stack import REPO_ROOT, admin_url, migrate, recreate_database
from bench.wrk import Request, WrkResult, lua_script, parse_result, require_wrk
from tests.support.issuer import TestIssuer

RESULTS = REPO_ROOT / "bench" / "results"
DATABASE = "taskflow_drain"
GOAL_RATE = 3000.0
GOAL_MULTIPLE = 2.0
PROJECTS = 50


def log(message: str) -> None:
    print(f"[drain {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


SEED_SQL = """
INSERT INTO tasks.outbox (event_id, payload, created_at)
SELECT e.event_id,
       jsonb_build_object(
         'event_id', e.event_id, 'tenant_id', %(tenant)s::text,
         'project_id', 1 + e.task %% %(projects)s, 'entity_type', 'task',
         'entity_id', e.task, 'action', CASE WHEN e.step = 0 THEN 'created' ELSE 'updated' END,
         'actor_id', 1, 'actor_handle', 'bench-user-1', 'actor_type', 'human',
         'details', jsonb_build_object(
           'before', jsonb_build_object('status', 'pending', 'progress_percent', e.step - 1),
           'after', jsonb_build_object('status', 'in_progress', 'progress_percent', e.step),
           'client_id', 'bench-client', 'client_name', 'Bench'),
         'created_at', to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')),
       e.at
FROM (
  SELECT gen_random_uuid() AS event_id, 1 + (g - 1) %% %(entities)s AS task,
         (g - 1) / %(entities)s AS step,
         now() - interval '1 hour' + g * interval '1 microsecond' AS at
  FROM generate_series(1, %(events)s) AS g
) AS e
ORDER BY e.at
"""


def seed_backlog(database_url: str, events: int, entities: int) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            SEED_SQL,
            {"tenant": BENCH_TENANT, "projects": PROJECTS, "entities": entities, "events": events},
        )
        conn.execute("ANALYZE tasks.outbox")


def pending(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM tasks.outbox WHERE delivered_at IS NULL")
        return int(row.fetchone()[0])  # type: ignore[index]


def wait_drained(database_url: str, max_wait: float) -> float | None:
    """Seconds until the outbox is empty (None: gave up), logging progress every 5 s."""
    started = last_log = time.monotonic()
    while True:
        left = pending(database_url)
        now = time.monotonic()
        if left == 0:
            return now - started
        if now - started > max_wait:
            log(f"gave up: {left} events still pending after {max_wait:.0f}s")
            return None
        if now - last_log >= 5:
            log(f"{left} pending")
            last_log = now
        time.sleep(0.25)


def check_delivery(database_url: str) -> dict[str, Any]:
    """Exactly once, each entity's entries in outbox order, and the hash chain (CLI)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM tasks.outbox),"
            " (SELECT count(*) FROM audit.entries),"
            " (SELECT count(DISTINCT event_id) FROM audit.entries),"
            " (SELECT count(*) FROM tasks.outbox o"
            "  WHERE NOT EXISTS (SELECT 1 FROM audit.entries a WHERE a.event_id = o.event_id))"
        ).fetchone()
        swapped = conn.execute(
            "SELECT count(*) FROM ("
            " SELECT a.id, lag(a.id) OVER (PARTITION BY a.entity_type, a.entity_id ORDER BY o.id)"
            "   AS prev_id"
            " FROM tasks.outbox o JOIN audit.entries a ON a.event_id = o.event_id) s"
            " WHERE s.id < s.prev_id"
        ).fetchone()
    assert counts is not None and swapped is not None
    outbox, entries, distinct, missing = (int(v) for v in counts)
    verify = subprocess.run(
        [sys.executable, "-m", "taskflow_cli.main", "audit", "verify", "--json"],
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url, "LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=REPO_ROOT,
    )
    report = json.loads(verify.stdout.strip().splitlines()[-1]) if verify.stdout.strip() else {}
    return {
        "outbox_events": outbox,
        "audit_entries": entries,
        "stored_twice": entries - distinct,
        "lost": missing,
        "entity_order_swaps": int(swapped[0]),
        "chain_ok": bool(report.get("ok")),
        "chain_checked": report.get("checked"),
        "ok": entries == distinct == outbox
        and missing == 0
        and swapped[0] == 0
        and bool(report.get("ok")),
    }


def service_env(database_url: str, issuer: Any, ports: dict[str, int]) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "SSO_URL": issuer.url,
        "JWKS_URL": issuer.jwks_url,
        "TASKS_URL": f"http://127.0.0.1:{ports['tasks-1']}",
        "AUDIT_URL": f"http://127.0.0.1:{ports['audit']}",
        "AUTH_VERIFIER_URL": f"http://127.0.0.1:{ports['auth-verifier']}",
        "SERVICE_SECRET": SERVICE_SECRET,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "WARNING",  # a line per delivered batch would cost the relay
        "RATE_LIMIT_PER_MINUTE": "0",
        "ENV": "benchmark",
        "PYTHONPATH": str(REPO_ROOT),
    }


SERVICE_SECRET = "relay-drain-bench-service-secret-0123456789"
MODULES = {
    "audit": "taskflow_audit.asgi:app",
    "auth-verifier": "taskflow_auth_verifier.asgi:app",
    "tasks": "taskflow_tasks.asgi:app",
}


class Services:
    """audit, auth-verifier and ``replicas`` tasks processes on one database."""

    def __init__(self, registry: ProcessRegistry, database_url: str, issuer: Any, replicas: int):
        self.registry = registry
        self.names = ["audit", "auth-verifier", *(f"tasks-{n + 1}" for n in range(replicas))]
        self.ports = {name: free_port() for name in self.names}
        self.env = service_env(database_url, issuer, self.ports)
        self.procs: dict[str, Managed] = {}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, names: list[str]) -> None:
        for name in names:
            module = MODULES[name.split("-")[0] if name.startswith("tasks") else name]
            self.procs[name] = self.registry.start(
                name, uvicorn_argv(module, self.ports[name]), env=self.env, cwd=REPO_ROOT
            )
        for name in names:
            wait_until_healthy(self.procs[name], f"{self.url(name)}/health", timeout=60)

    @property
    def replicas(self) -> list[str]:
        return [n for n in self.names if n.startswith("tasks-")]

    def stop(self) -> None:
        for managed in self.procs.values():
            managed.stop()


def drain(args: argparse.Namespace, registry: ProcessRegistry, issuer: Any) -> dict[str, Any]:
    database_url = recreate_database(admin_url(), DATABASE)
    migrate(database_url, registry.log_dir)
    log(f"seeding {args.events} pending outbox events ({args.entities} tasks)")
    seed_backlog(database_url, args.events, args.entities)
    services = Services(registry, database_url, issuer, replicas=2)
    try:
        services.start(["audit", "auth-verifier"])
        started = datetime.now(UTC)
        services.start(services.replicas)  # each replica's relay starts draining at once
        log("two tasks replicas up: draining")
        waited = wait_drained(database_url, args.max_wait)
    finally:
        services.stop()
    with psycopg.connect(database_url, autocommit=True) as conn:
        first, last = conn.execute(
            "SELECT min(delivered_at), max(delivered_at) FROM tasks.outbox"
        ).fetchone() or (None, None)
    result: dict[str, Any] = {"events": args.events, "entities": args.entities}
    if waited is None or first is None or last is None:
        result["rate"] = None
        return result
    span = (last - first).total_seconds()
    result["from_start_s"] = round((last - started).total_seconds(), 2)
    result["delivering_s"] = round(span, 2)
    result["rate"] = round(args.events / span, 1) if span > 0 else None
    result["rate_from_start"] = round(args.events / result["from_start_s"], 1)
    log("checking: exactly once, per-task order, taskflow audit verify")
    result["checks"] = check_delivery(database_url)
    log(f"drain: {result}")
    return result


def wrk_unpinned(url: str, script: Path, duration: float, connections: int) -> WrkResult:
    """wrk on whichever core is free (bench.wrk.run_wrk pins it to the driver CPU)."""
    argv = [require_wrk(), "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s"]
    argv += ["--timeout=5s", "--latency", "-s", str(script), url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return parse_result(done.stdout)


def create_project(tasks_url: str, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    resp = httpx.get(f"{tasks_url}/api/projects", headers=headers, timeout=30)
    if resp.status_code != 200:
        raise BenchError(f"GET /api/projects → {resp.status_code}: {resp.text[:200]}")
    return int(next(p["id"] for p in resp.json() if p["is_default"]))


def write_ceiling(
    args: argparse.Namespace, registry: ProcessRegistry, issuer: Any
) -> dict[str, Any]:
    database_url = recreate_database(admin_url(), DATABASE)
    migrate(database_url, registry.log_dir)
    services = Services(registry, database_url, issuer, replicas=2)
    token = bench_token(issuer)
    try:
        services.start(services.names)
        project_id = create_project(services.url("tasks-1"), token)
        script = registry.log_dir / "create_task.lua"
        body = json.dumps({"title": "load {n}", "priority": "medium"})
        request = Request("POST", f"/api/projects/{project_id}/tasks", body)
        script.write_text(lua_script(request, token))
        with psycopg.connect(database_url, autocommit=True) as conn:
            (before,) = conn.execute("SELECT count(*) FROM tasks.outbox").fetchone() or (0,)
        results: dict[str, WrkResult] = {}

        def drive(name: str) -> None:
            results[name] = wrk_unpinned(
                services.url(name), script, args.duration, args.connections
            )

        log(f"write load: {args.connections} connections per replica, {args.duration:g}s")
        threads = [threading.Thread(target=drive, args=(n,)) for n in services.replicas]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with psycopg.connect(database_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE delivered_at IS NULL) FROM tasks.outbox"
            ).fetchone()
        assert row is not None
        events, backlog = int(row[0]) - int(before), int(row[1])
        log(f"load over: {events} events written, {backlog} not yet delivered")
        catch_up = wait_drained(database_url, args.max_wait)
    finally:
        services.stop()
    duration = max(r.duration_s for r in results.values())
    return {
        "replicas": {
            name: {"rps": round(r.rps, 1), "p99_ms": r.p99_ms, "errors": r.errors}
            for name, r in results.items()
        },
        "write_rate": round(sum(r.rps for r in results.values()), 1),
        "events_written": events,
        "event_rate": round(events / duration, 1),
        "backlog_at_end": backlog,
        "catch_up_s": None if catch_up is None else round(catch_up, 2),
    }


def report(drained: dict[str, Any] | None, writes: dict[str, Any] | None) -> str:
    lines = ["| measure | value |", "|---|---|"]
    if drained:
        checks = drained.get("checks", {})
        lines += [
            f"| backlog drained | {drained['events']} events ({drained['entities']} tasks) |",
            f"| drain rate (first → last delivery) | {drained.get('rate')} events/s |",
            f"| drain rate (from start) | {drained.get('rate_from_start')} events/s |",
            f"| exactly once / per-task order / chain | {checks.get('stored_twice')} twice,"
            f" {checks.get('lost')} lost / {checks.get('entity_order_swaps')} swaps /"
            f" {'verified' if checks.get('chain_ok') else 'BROKEN'}"
            f" ({checks.get('chain_checked')} entries) |",
        ]
    if writes:
        per = ", ".join(
            f"{n} {r['rps']}/s (p99 {r['p99_ms']:.0f} ms, {r['errors']} errors)"
            for n, r in writes["replicas"].items()
        )
        lines += [
            f"| write rate, two replicas at full load | {writes['write_rate']} creates/s ({per}) |",
            f"| audit events written meanwhile | {writes['event_rate']} events/s |",
            f"| backlog when the load stopped / drained after | {writes['backlog_at_end']} /"
            f" {writes['catch_up_s']} s |",
        ]
    if drained and writes and drained.get("rate"):
        multiple = drained["rate"] / max(writes["event_rate"], 1e-9)
        lines.append(f"| drain ÷ write rate | {multiple:.2f} times (goal ≥ {GOAL_MULTIPLE:g}) |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--entities", type=int, default=10_000, help="tasks the events are of")
    parser.add_argument("--duration", type=float, default=20.0, help="write load, seconds")
    parser.add_argument("--connections", type=int, default=32, help="per replica")
    parser.add_argument("--max-wait", type=float, default=600.0, help="seconds, per drain")
    parser.add_argument("--skip-drain", action="store_true")
    parser.add_argument("--skip-writes", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.events <= 2_000_000 or not 1 <= args.entities <= args.events:
        parser.error("--events in [1, 2000000], --entities in [1, events]")
    return args


def run(args: argparse.Namespace) -> int:
    started = datetime.now(UTC)
    work_dir = RESULTS / f"{started:%Y%m%dT%H%M%SZ}-drain"
    drained = writes = None
    with ProcessRegistry(work_dir / "logs") as registry:
        issuer = TestIssuer().start()
        try:
            if not args.skip_drain:
                drained = drain(args, registry, issuer)
            if not args.skip_writes:
                writes = write_ceiling(args, registry, issuer)
        finally:
            issuer.stop()
    text = report(drained, writes)
    (work_dir / "drain.json").write_text(
        json.dumps({"drain": drained, "writes": writes}, indent=2, default=str) + "\n"
    )
    (work_dir / "drain.md").write_text(text + "\n")
    (RESULTS / "latest-drain.md").write_text(text + "\n")
    print()
    print(text)
    print(f"\nresults: {work_dir / 'drain.md'}; logs in {work_dir / 'logs'}")
    ok = drained is None or (
        drained.get("rate") is not None and drained["checks"]["ok"] and drained["rate"] >= GOAL_RATE
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_exclusively("relay_drain", lambda: run(args), say=log)


if __name__ == "__main__":
    sys.exit(main())
