"""Load test (issue 9 §4): 100 concurrent clients for a fixed time over a realistic mix, through
the nginx gateway, then a consistency check of every write against the audit trail.

    uv run python bench/load.py [--clients 100] [--duration 30] [--direct]

Each client is one user of a shared project (four users, four projects), with real RS256 tokens.
The mix: task lists (with filters and sorts), single tasks, creates, status changes along the
workflow, progress updates and audit reads. Each client changes only the tasks it created, so a
refused transition is a bug, not a race between clients. Afterwards, once the outbox relay has
drained, it checks in the database that every task created exists with the status its client
last set, and that each successful write has exactly one audit entry (no loss, no duplicate).
Without nginx (or its config) it drives the services directly and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg

from bench.procs import (
    BenchError,
    ProcessRegistry,
    pin_self_to_driver_cpu,
    run_exclusively,
)
from bench.seed import BENCH_TENANT, task_body
from bench.stack import REPO_ROOT, SERVICE_NAMES, Stack, admin_url, migrate, recreate_database

RESULTS = REPO_ROOT / "bench" / "results"
USERS = 4
SEED_TASKS_PER_PROJECT = 50
# Valid next statuses along the workflow (issue 4's transition table), for a client's own tasks.
NEXT_STATUS = {
    "pending": ("in_progress",),
    "in_progress": ("review", "blocked", "completed"),
    "blocked": ("in_progress",),
    "review": ("completed", "in_progress"),
    "completed": ("review",),
}
MIX = (
    ("list", 30),
    ("get", 25),
    ("create", 15),
    ("status", 15),
    ("progress", 5),
    ("audit", 10),
)
LIST_QUERIES = (
    {"limit": 50},
    {"status": "in_progress", "limit": 50},
    {"sort_by": "priority", "sort_order": "desc", "limit": 20},
    {"sort_by": "due_date", "sort_order": "asc", "has_due_date": "true", "limit": 50},
    {"tags": "backend", "limit": 50},
    {"search": "review", "limit": 50},
    {"priority": "high", "offset": 10, "limit": 10},
)


def log(message: str) -> None:
    print(f"[load {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


@dataclass
class Ledger:
    """Everything the clients did: latencies, failures, and the writes that succeeded."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    # task id -> Counter(action -> successful writes); task id -> last status set
    writes: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    final_status: dict[int, str] = field(default_factory=dict)
    uncertain_writes: int = 0

    def record(self, op: str, started: float, status: int | str) -> None:
        self.latencies[op].append((time.perf_counter() - started) * 1000)
        self.statuses[f"{op} {status}"] += 1

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def errors(self) -> int:
        return len(self.failures)


@dataclass
class Client:
    number: int
    token: str
    project_id: int
    readable: list[int]  # task ids of the shared projects
    rng: random.Random
    own: dict[int, str] = field(default_factory=dict)  # task id -> current status


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


class Router:
    """Gateway URL for every path, or (without nginx) the owning service's URL."""

    def __init__(self, gateway_url: str | None, services: dict[str, str]) -> None:
        self.gateway_url = gateway_url
        self.services = services

    def url(self, path: str) -> str:
        if self.gateway_url:
            return self.gateway_url + path
        from taskflow_core.gateway import owner_of

        return self.services[owner_of(path)] + path


async def one_request(
    http: httpx.AsyncClient,
    router: Router,
    ledger: Ledger,
    op: str,
    client: Client,
    method: str,
    path: str,
    *,
    expect: tuple[int, ...] = (200,),
    **kwargs: Any,
) -> httpx.Response | None:
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {client.token}"}
    try:
        resp = await http.request(method, router.url(path), headers=headers, **kwargs)
    except httpx.HTTPError as exc:
        ledger.record(op, started, type(exc).__name__)
        ledger.failures.append(f"{op} {method} {path}: {type(exc).__name__}")
        if method != "GET":
            ledger.uncertain_writes += 1
        return None
    ledger.record(op, started, resp.status_code)
    if resp.status_code not in expect:
        ledger.failures.append(f"{op} {method} {path}: {resp.status_code} {resp.text[:200]}")
        return None
    return resp


async def client_loop(
    http: httpx.AsyncClient, router: Router, ledger: Ledger, client: Client, stop_at: float
) -> None:
    ops, weights = zip(*MIX, strict=True)
    while time.monotonic() < stop_at:
        op = client.rng.choices(ops, weights)[0]
        if op in ("status", "progress") and not client.own:
            op = "create"
        if op == "list":
            query = client.rng.choice(LIST_QUERIES)
            await one_request(
                http,
                router,
                ledger,
                op,
                client,
                "GET",
                f"/api/projects/{client.project_id}/tasks",
                params=query,
            )
        elif op == "get":
            task_id = client.rng.choice(client.readable)
            await one_request(http, router, ledger, op, client, "GET", f"/api/tasks/{task_id}")
        elif op == "audit":
            pool = list(client.own) or client.readable
            task_id = client.rng.choice(pool)
            await one_request(
                http,
                router,
                ledger,
                op,
                client,
                "GET",
                f"/api/tasks/{task_id}/audit",
                params={"limit": 50},
            )
        elif op == "create":
            body = task_body(client.number * 1_000_000 + len(client.own), client.rng)
            resp = await one_request(
                http,
                router,
                ledger,
                op,
                client,
                "POST",
                f"/api/projects/{client.project_id}/tasks",
                json=body,
                expect=(201,),
            )
            if resp is not None:
                task_id = int(resp.json()["id"])
                client.own[task_id] = "pending"
                client.readable.append(task_id)
                ledger.writes[task_id]["created"] += 1
                ledger.final_status[task_id] = "pending"
        elif op == "status":
            task_id = client.rng.choice(list(client.own))
            target = client.rng.choice(NEXT_STATUS[client.own[task_id]])
            resp = await one_request(
                http,
                router,
                ledger,
                op,
                client,
                "PATCH",
                f"/api/tasks/{task_id}/status",
                json={"status": target},
            )
            if resp is not None:
                client.own[task_id] = target
                ledger.writes[task_id]["status_changed"] += 1
                ledger.final_status[task_id] = target
        elif op == "progress":
            started = [t for t, s in client.own.items() if s == "in_progress"]
            if not started:
                continue
            task_id = client.rng.choice(started)
            resp = await one_request(
                http,
                router,
                ledger,
                op,
                client,
                "PATCH",
                f"/api/tasks/{task_id}/progress",
                json={"percent": client.rng.randint(0, 100), "note": "load"},
            )
            if resp is not None:
                ledger.writes[task_id]["progress_updated"] += 1


# --- set-up -----------------------------------------------------------------------------------


async def set_up(router: Router, tokens: list[tuple[str, str]]) -> tuple[list[int], list[int]]:
    """Four projects owned by user 0 with the other users as members, 50 tasks each."""
    rng = random.Random(9)
    owner_token = tokens[0][1]
    headers = {"Authorization": f"Bearer {owner_token}"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        for _sub, token in tokens:  # first login of each user
            resp = await http.get(
                router.url("/api/projects"), headers={"Authorization": f"Bearer {token}"}
            )
            _expect(resp, 200)
        suffix = secrets.token_hex(3)
        project_ids: list[int] = []
        for p in range(USERS):
            resp = await http.post(
                router.url("/api/projects"),
                json={"slug": f"load-{suffix}-{p}", "name": f"Load project {p}"},
            )
            project_ids.append(int(_expect(resp, 201)["id"]))
            for sub, _token in tokens[1:]:
                resp = await http.post(
                    router.url(f"/api/projects/{project_ids[-1]}/members"), json={"user_id": sub}
                )
                _expect(resp, 201)
        task_ids: list[int] = []
        for pid in project_ids:
            for i in range(SEED_TASKS_PER_PROJECT):
                body = task_body(i, rng)
                resp = await http.post(router.url(f"/api/projects/{pid}/tasks"), json=body)
                task_ids.append(int(_expect(resp, 201)["id"]))
    return project_ids, task_ids


def _expect(resp: httpx.Response, status: int) -> Any:
    if resp.status_code != status:
        raise BenchError(
            f"set-up: {resp.request.method} {resp.request.url.path} → {resp.status_code} "
            f"{resp.text[:300]}"
        )
    return resp.json()


# --- consistency ------------------------------------------------------------------------------


def wait_relay_drained(database_url: str, timeout: float = 180.0) -> int:
    deadline = time.monotonic() + timeout
    backlog = -1
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM tasks.outbox WHERE delivered_at IS NULL"
            ).fetchone()
            backlog = int(row[0]) if row else 0
            if backlog == 0:
                return 0
            time.sleep(0.5)
    return backlog


def check_consistency(database_url: str, ledger: Ledger) -> dict[str, Any]:
    """Every successful write present, each audited exactly once."""
    ids = list(ledger.writes)
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        stored = {
            int(r[0]): str(r[1])
            for r in conn.execute(
                "SELECT id, status FROM tasks.tasks WHERE id = ANY(%s)", (ids,)
            ).fetchall()
        }
        audited: dict[int, Counter[str]] = defaultdict(Counter)
        for entity_id, action, count in conn.execute(
            "SELECT entity_id, action, count(*) FROM audit.entries"
            " WHERE entity_type = 'task' AND entity_id = ANY(%s) GROUP BY 1, 2",
            (ids,),
        ).fetchall():
            audited[int(entity_id)][str(action)] = int(count)
    missing_tasks = [t for t in ids if t not in stored]
    wrong_status = [
        (t, ledger.final_status[t], stored.get(t))
        for t in ids
        if t in stored and t in ledger.final_status and stored[t] != ledger.final_status[t]
    ]
    missing_audit: list[tuple[int, str, int, int]] = []
    duplicate_audit: list[tuple[int, str, int, int]] = []
    unexpected: list[tuple[int, str, int]] = []
    expected_total = 0
    for task_id, actions in ledger.writes.items():
        got = audited.get(task_id, Counter())
        for action, count in actions.items():
            expected_total += count
            if got[action] < count:
                missing_audit.append((task_id, action, count, got[action]))
            elif got[action] > count:
                duplicate_audit.append((task_id, action, count, got[action]))
        for action, count in got.items():
            if action not in actions:
                unexpected.append((task_id, action, count))
    return {
        "tasks_written": len(ids),
        "writes": expected_total,
        "audit_entries": sum(sum(c.values()) for c in audited.values()),
        "missing_tasks": missing_tasks[:20],
        "missing_task_count": len(missing_tasks),
        "wrong_status": wrong_status[:20],
        "wrong_status_count": len(wrong_status),
        "missing_audit": missing_audit[:20],
        "missing_audit_count": len(missing_audit),
        "duplicate_audit": duplicate_audit[:20],
        "duplicate_audit_count": len(duplicate_audit),
        "unexpected_audit": unexpected[:20],
        "unexpected_audit_count": len(unexpected),
        "uncertain_writes": ledger.uncertain_writes,
        "ok": not (missing_tasks or wrong_status or missing_audit or duplicate_audit),
    }


# --- the run ----------------------------------------------------------------------------------


async def drive(
    router: Router,
    tokens: list[tuple[str, str]],
    args: argparse.Namespace,
    during: Callable[[], Awaitable[None]] | None = None,
) -> tuple[Ledger, float]:
    """Set up, then the clients for ``args.duration``; ``during`` (bench/compose_replicas.py
    stops replicas in it) runs alongside the clients, from their first request."""
    project_ids, seeded = await set_up(router, tokens)
    log(f"set up {len(project_ids)} projects, {len(seeded)} tasks; {args.clients} clients go")
    ledger = Ledger()
    clients = [
        Client(
            number=i,
            token=tokens[i % USERS][1],
            project_id=project_ids[i % USERS],
            readable=list(seeded),
            rng=random.Random(1000 + i),
        )
        for i in range(args.clients)
    ]
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    started = time.monotonic()
    stop_at = started + args.duration
    async with httpx.AsyncClient(limits=limits, timeout=args.timeout) as http:
        loops = [client_loop(http, router, ledger, c, stop_at) for c in clients]
        await asyncio.gather(*loops, *([during()] if during else []))
    return ledger, time.monotonic() - started


def report(
    ledger: Ledger, elapsed: float, consistency: dict[str, Any], via: str, args: argparse.Namespace
) -> str:
    every = [v for values in ledger.latencies.values() for v in values]
    lines = [
        f"# Load test: {args.clients} clients, {args.duration:.0f} s, via {via}",
        "",
        f"requests {ledger.requests} ({ledger.requests / elapsed:.0f}/s), errors {ledger.errors}, "
        f"p50 {percentile(every, 50):.1f} ms, p99 {percentile(every, 99):.1f} ms",
        "",
        "| operation | requests | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|",
    ]
    failures_by_op = Counter(f.split(" ", 1)[0] for f in ledger.failures)
    for op, _weight in MIX:
        values = ledger.latencies.get(op, [])
        lines.append(
            f"| {op} | {len(values)} | {percentile(values, 50):.1f} | "
            f"{percentile(values, 99):.1f} | {failures_by_op.get(op, 0)} |"
        )
    lines += [
        "",
        f"consistency: {'OK' if consistency.get('ok') else 'FAILED'}: "
        f"{consistency.get('tasks_written')} tasks written, {consistency.get('writes')} writes, "
        f"{consistency.get('audit_entries')} audit entries for them; missing tasks "
        f"{consistency.get('missing_task_count')}, wrong final status "
        f"{consistency.get('wrong_status_count')}, writes without audit "
        f"{consistency.get('missing_audit_count')}, duplicated audit "
        f"{consistency.get('duplicate_audit_count')}, writes of unknown outcome "
        f"{consistency.get('uncertain_writes')}",
    ]
    if consistency.get("unexpected_audit_count"):
        lines.append(
            f"audit entries not matching a client write (e.g. side effects): "
            f"{consistency['unexpected_audit'][:5]}"
        )
    for failure in ledger.failures[:10]:
        lines.append(f"- error: {failure}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds (at most 600)")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, s")
    parser.add_argument("--direct", action="store_true", help="skip nginx, call the services")
    parser.add_argument("--pool-size", type=int, default=10, help="DB_POOL_MAX_SIZE per service")
    parser.add_argument(
        "--pin", action="store_true", help="services on CPU 0, clients on CPU 1 (as bench/run.py)"
    )
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 600:
        parser.error("--duration must be in (0, 600] seconds")
    if not 1 <= args.clients <= 1000:
        parser.error("--clients must be in [1, 1000]")
    return args


def run(args: argparse.Namespace) -> int:
    if args.pin:
        pin_self_to_driver_cpu()
    started_at = datetime.now(UTC)
    work_dir = RESULTS / f"{started_at:%Y%m%dT%H%M%SZ}-load"
    log_dir = work_dir / "logs"
    with ProcessRegistry(log_dir) as registry:
        database_url = recreate_database(admin_url(), "taskflow_load")
        migrate(database_url, log_dir)
        stack = Stack(registry, database_url, pool_max_size=args.pool_size, pin=args.pin)
        stack.start_issuer()
        try:
            stack.start_services(SERVICE_NAMES)
            gateway_url, via = None, "the services directly (--direct)"
            if not args.direct:
                from bench.gateway import start_gateway

                try:
                    gateway = start_gateway(
                        registry, stack.services, work_dir / "nginx", pin=args.pin
                    )
                    gateway_url, via = gateway.url, "the nginx gateway"
                except BenchError as exc:
                    via = f"the services directly (gateway unavailable: {exc})"
            log(f"driving {via}")
            router = Router(gateway_url, {n: s.url for n, s in stack.services.items()})
            tokens = [
                (
                    f"load-user-{u}",
                    stack.issuer.token(
                        f"load-user-{u}",
                        email=f"load-user-{u}@bench.test",
                        name=f"Load user {u}",
                        tenant_id=BENCH_TENANT,
                        expires_in=6 * 3600,
                    ),
                )
                for u in range(USERS)
            ]
            ledger, elapsed = asyncio.run(drive(router, tokens, args))
            log(f"{ledger.requests} requests in {elapsed:.1f}s; waiting for the relay to drain")
            backlog = wait_relay_drained(database_url)
            consistency = check_consistency(database_url, ledger)
            consistency["outbox_backlog_left"] = backlog
        finally:
            stack.stop_issuer()
    text = report(ledger, elapsed, consistency, via.split(" (")[0], args)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "load.md").write_text(text + "\n")
    (RESULTS / "latest-load.md").write_text(text + "\n")
    print()
    print(text)
    print(f"\nresults: {work_dir / 'load.md'}; logs in {log_dir}")
    return 0 if ledger.errors == 0 and consistency.get("ok") and backlog == 0 else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_exclusively("load", lambda: run(args), say=log)


if __name__ == "__main__":
    sys.exit(main())
