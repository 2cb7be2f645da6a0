"""Webhook delivery: backlog drain and write-to-delivery latency (issue 18, "Done when").

    uv run python bench/webhooks.py [--backlog 10000] [--rate 50] [--seconds 20] [--poll 1.0]

A fresh database (``taskflow_webhooks``, ``taskflow migrate``), the test SSO issuer, tasks +
audit + auth-verifier as real uvicorn processes (``WEBHOOK_ALLOW_PRIVATE=true``,
``EVENTS_POLL_INTERVAL=--poll``), and three local receivers (``tests/support/receiver.py``,
HTTP/1.1 keep-alive, answering 200) registered as webhooks of one project.

1. Backlog: the bench holds the ``webhooks`` consumer's advisory lock while it creates
   ``--backlog`` tasks through the API (so nothing is fanned out yet), then lets go and measures
   until every delivery (``--backlog`` times 3) is delivered: the drain time (goal < 60 s).
2. Steady: ``--rate`` task creates a second for ``--seconds``; for each, the time from the
   write's response to the arrival of its ``task.created`` at each receiver: p50/p99/max, and
   the writes' own latency.
3. Hanging: ``--hanging-writes`` creates at the same rate while one receiver holds every request
   for 30 s (the delivery timeout is 10 s): the writes' latency, and how long after the last
   write the audit relay has delivered everything (the outbox holds no undelivered row).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg

from bench.load import percentile
from bench.procs import ProcessRegistry, exclusive_run
from bench.seed import bench_token
from bench.stack import REPO_ROOT, Stack, admin_url, migrate, recreate_database
from tests.support.receiver import Receiver

DBNAME = "taskflow_webhooks"
LOCK = "SELECT pg_advisory_lock(hashtext('taskflow-events:webhooks'))"
UNLOCK = "SELECT pg_advisory_unlock(hashtext('taskflow-events:webhooks'))"


def _create(http: httpx.Client, pid: int, title: str) -> float:
    resp = http.post(f"/api/projects/{pid}/tasks", json={"title": title})
    if resp.status_code != 201:
        raise RuntimeError(f"create answered {resp.status_code}: {resp.text[:200]}")
    return time.time()


def _timed_create(http: httpx.Client, pid: int, title: str) -> tuple[float, float]:
    sent = time.time()
    return sent, _create(http, pid, title)


def _steady(
    pool: concurrent.futures.ThreadPoolExecutor,
    create: Any,
    rate: int,
    count: int,
    prefix: str,
) -> dict[str, tuple[float, float]]:
    """``count`` creates at ``rate`` a second: title -> (sent, answered)."""
    interval = 1.0 / rate
    start = time.monotonic()
    futures = []
    for i in range(count):
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        title = f"{prefix} {i}"
        futures.append((title, pool.submit(create, title)))
    return {title: future.result() for title, future in futures}


def _audit_backlog(db: str) -> int:
    with psycopg.connect(db, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM tasks.outbox WHERE delivered_at IS NULL"
        ).fetchone()
    return int(row[0]) if row else 0


def _ms(values: list[float], pct: float) -> float | None:
    return round(percentile(values, pct) * 1000, 1) if values else None


def _delivered(db: str) -> int:
    with psycopg.connect(db, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM tasks.webhook_deliveries WHERE state = 'delivered'"
        ).fetchone()
    return int(row[0]) if row else 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    log_dir = REPO_ROOT / "bench" / "results" / f"webhooks-{time.strftime('%Y%m%d-%H%M%S')}"
    log_dir.mkdir(parents=True, exist_ok=True)
    db = recreate_database(admin_url(), DBNAME)
    migrate(db, log_dir)
    os.environ.update(WEBHOOK_ALLOW_PRIVATE="true", EVENTS_POLL_INTERVAL=str(args.poll))
    receivers = [Receiver().start() for _ in range(3)]
    for r in receivers:
        r.server.RequestHandlerClass.protocol_version = "HTTP/1.1"
    try:
        with ProcessRegistry(log_dir) as registry:
            stack = Stack(registry, db, pin=False)
            stack.start_issuer()
            try:
                stack.start_services(("tasks", "audit", "auth-verifier"))
                return _measure(args, stack, db, receivers)
            finally:
                stack.stop_issuer()
    finally:
        for r in receivers:
            r.stop()


def _measure(
    args: argparse.Namespace, stack: Stack, db: str, receivers: list[Receiver]
) -> dict[str, Any]:
    token = bench_token(stack.issuer)
    url = stack.services["tasks"].url
    headers = {"Authorization": f"Bearer {token}"}
    local = threading.local()

    def client() -> httpx.Client:
        if not hasattr(local, "http"):
            local.http = httpx.Client(base_url=url, headers=headers, timeout=30)
        return local.http  # type: ignore[no-any-return]

    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        pid = http.post("/api/projects", json={"name": "Hooks", "slug": "hooks"}).json()["id"]
        for r in receivers:
            made = http.post(f"/api/projects/{pid}/webhooks", json={"url": r.url + "/hook"})
            assert made.status_code == 201, made.text
    pool = concurrent.futures.ThreadPoolExecutor(8)
    # 1. backlog
    with psycopg.connect(db, autocommit=True) as holder:
        holder.execute(LOCK)
        started = time.monotonic()
        list(pool.map(lambda i: _create(client(), pid, f"backlog {i}"), range(args.backlog)))
        written_s = time.monotonic() - started
        time.sleep(max(2 * args.poll, 1.0))  # the consumer's rounds find the lock held
        holder.execute(UNLOCK)
        released = time.monotonic()
    expected = args.backlog * 3
    while _delivered(db) < expected:
        if time.monotonic() - released > args.max_wait:
            break
        time.sleep(0.1)
    drain_s = time.monotonic() - released
    drained = _delivered(db)
    # 2. steady rate: write response -> arrival at each receiver
    for r in receivers:
        r.received.clear()
    create = lambda title: _timed_create(client(), pid, title)  # noqa: E731
    steady = _steady(pool, create, args.rate, args.rate * args.seconds, "steady")
    time.sleep(max(3.0, 3 * args.poll))
    latencies = []
    for r in receivers:
        for got in list(r.received):
            body = json.loads(got.body)
            title = body["data"]["task"]["title"]
            if body["type"] == "task.created" and title in steady:
                latencies.append(got.at - steady[title][1])
    writes = sorted(done - sent for sent, done in steady.values())
    # 3. the same writes with one endpoint hanging (longer than the 10 s timeout)
    receivers[0].hang = 30.0
    hanging = _steady(pool, create, args.rate, args.hanging_writes, "hanging")
    last_answer = max(done for _, done in hanging.values())
    while _audit_backlog(db) and time.time() - last_answer < 60:
        time.sleep(0.05)
    audit_lag = time.time() - last_answer
    hanging_writes = sorted(done - sent for sent, done in hanging.values())
    receivers[0].hang = 0.0
    pool.shutdown()
    lat = sorted(latencies)
    return {
        "backlog_events": args.backlog,
        "backlog_write_s": round(written_s, 1),
        "deliveries_expected": expected,
        "deliveries_delivered": drained,
        "drain_s": round(drain_s, 1),
        "drain_per_s": round(drained / drain_s, 1) if drain_s else None,
        "steady_writes": len(steady),
        "steady_rate_per_s": args.rate,
        "poll_interval_s": args.poll,
        "latency_samples": len(lat),
        "latency_p50_ms": _ms(lat, 50),
        "latency_p99_ms": _ms(lat, 99),
        "latency_max_ms": round(lat[-1] * 1000, 1) if lat else None,
        "write_p50_ms": _ms(writes, 50),
        "write_p99_ms": _ms(writes, 99),
        "hanging_writes": len(hanging),
        "hanging_write_p50_ms": _ms(hanging_writes, 50),
        "hanging_write_p99_ms": _ms(hanging_writes, 99),
        "hanging_audit_caught_up_s_after_last_write": round(audit_lag, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--hanging-writes", type=int, default=1000)
    parser.add_argument("--max-wait", type=float, default=300.0)
    args = parser.parse_args()
    with exclusive_run():
        result = run(args)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
