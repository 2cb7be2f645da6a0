"""TaskFlow benchmark (issue 8): wrk scenarios against the services, pinned, with a control.

    uv run python bench/run.py [--scenarios get_task,list_tasks,...] [--duration 10]
        [--connections 32] [--scale small|large] [--through-gateway] [--sql-count]

Starts a fresh PostgreSQL database (``taskflow_bench``, migrated with ``taskflow migrate``), the
test SSO issuer (real RS256 tokens), the three services and the bare Falcon control as uvicorn
processes pinned to CPU 0 (wrk, nginx and the database's backends on CPU 1), seeds data through
the API, then drives each scenario with wrk and prints: req/s, p50/p90/p99, errors, the service
process's CPU milliseconds per request (from /proc) and that as a multiple of the control's.
Results go to bench/results/<stamp>/ (JSON + markdown) and bench/results/latest.*.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg

from bench import large, pgstats
from bench.procs import (
    DEFAULT_STACK,
    DRIVER_CPU,
    SERVER_STACKS,
    SERVICE_CPU,
    BenchError,
    ProcessRegistry,
    cpu_count,
    cpu_seconds,
    pin_self_to_driver_cpu,
    rss_mb,
    run_exclusively,
)
from bench.report import Row, markdown_table, write_results
from bench.scenarios import CONTROL, Scenario, build_scenarios
from bench.seed import (
    ApiSeeder,
    NotImplementedYet,
    SeedData,
    bench_token,
    route_missing,
    wait_for_audit,
)
from bench.stack import (
    REPO_ROOT,
    SERVICE_NAMES,
    Stack,
    admin_url,
    database_exists,
    migrate,
    pin_database_backends,
    recreate_database,
    with_database,
)
from bench.wrk import WrkResult, lua_script, require_wrk, run_wrk

RESULTS = REPO_ROOT / "bench" / "results"
MAX_DURATION = 120.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenarios", default="", help="comma-separated names (default: all)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--scale", choices=("small", "large"), default="small")
    parser.add_argument(
        "--through-gateway", action="store_true", help="also run each scenario through nginx"
    )
    parser.add_argument(
        "--gateway-only",
        action="store_true",
        help="only the gateway runs (implies --through-gateway)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="measured runs per scenario; the median counts"
    )
    parser.add_argument("--sql-count", action="store_true", help="count SQL per request")
    parser.add_argument(
        "--pg-stats",
        action="store_true",
        help="PostgreSQL time per request from pg_stat_statements (needs it preloaded)",
    )
    parser.add_argument("--reseed", action="store_true", help="large: reload even if present")
    parser.add_argument("--pool-size", type=int, default=10, help="DB_POOL_MAX_SIZE per service")
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of the services")
    parser.add_argument(
        "--server-stack",
        choices=tuple(SERVER_STACKS),
        default=DEFAULT_STACK,
        help="the services' uvicorn loop + HTTP parser (default: production's)",
    )
    parser.add_argument(
        "--control-stack",
        choices=tuple(SERVER_STACKS),
        default=DEFAULT_STACK,
        help="the control's uvicorn loop + HTTP parser (default: uvloop-httptools)",
    )
    parser.add_argument(
        "--profile", default="", help="comma-separated scenarios to record with py-spy (direct)"
    )
    parser.add_argument("--list-tasks", type=int, default=300, help="small seed: tasks listed")
    parser.add_argument("--write-tasks", type=int, default=256, help="tasks per write scenario")
    args = parser.parse_args(argv)
    if not 0 < args.duration <= MAX_DURATION:
        parser.error(f"--duration must be in (0, {MAX_DURATION:.0f}] seconds")
    if not 0 <= args.warmup <= 30:
        parser.error("--warmup must be in [0, 30] seconds")
    if not 1 <= args.connections <= 1000:
        parser.error("--connections must be in [1, 1000]")
    if not 1 <= args.repeat <= 9:
        parser.error("--repeat must be in [1, 9]")
    if args.gateway_only:
        args.through_gateway = True
    return args


def log(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


# --- seeding ----------------------------------------------------------------------------------


async def seed_small(base_url: str, token: str, args: argparse.Namespace, data: SeedData) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
        await ApiSeeder(client).seed(data, list_tasks=args.list_tasks, write_tasks=args.write_tasks)


async def wait_audit_delivered(audit_url: str, token: str, data: SeedData) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=audit_url, headers=headers, timeout=10) as client:
        if not data.audit_task_ids:
            return "no audit tasks"
        # created + in_progress + 8 progress updates
        count = await wait_for_audit(client, data.audit_task_ids[-1], at_least=10, within_s=90)
        return f"audit entries of the last audit task: {count}"


def outbox_backlog(database_url: str) -> int | None:
    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT count(*) FROM tasks.outbox WHERE delivered_at IS NULL"
            ).fetchone()
    except psycopg.Error:
        return None
    return int(row[0]) if row else None


def wait_outbox_drained(database_url: str, timeout: float = 120.0) -> int | None:
    """Background delivery after a write scenario must not bill the next scenario's CPU."""
    deadline = time.monotonic() + timeout
    backlog = outbox_backlog(database_url)
    while backlog and time.monotonic() < deadline:
        time.sleep(0.5)
        backlog = outbox_backlog(database_url)
    return backlog


async def reset_status(base_url: str, token: str, ids: list[int]) -> None:
    # Requests wrk left in flight when it stopped are still being served: let them commit
    # first, or a task read as in_progress here turns blocked just after.
    await asyncio.sleep(1.5)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
        await ApiSeeder(client).reset_status_tasks(ids)


# --- one measurement --------------------------------------------------------------------------


def preflight(url: str, scenario: Scenario, token: str) -> str | None:
    """One request of the scenario's shape; the reason to skip it, or None."""
    request = scenario.request
    first = request.ids[0] if request.ids else 0
    path = request.path.replace("{id}", str(first)).replace("{n}", "0")
    body = None
    if request.body is not None and request.method != "PATCH":
        body = request.body.replace("{n}", "0").replace("{pct}", "1")
    if request.method == "PATCH":
        return None  # writes to the toggled tasks are checked by the reset and the run itself
    try:
        resp = httpx.request(
            request.method,
            url + path,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            content=body,
            timeout=10,
        )
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__} on {path}"
    if route_missing(resp):
        return f"not implemented yet ({resp.status_code} on {request.method} {path})"
    if resp.status_code >= 400:
        return f"preflight {resp.status_code}: {resp.text[:160]}"
    return None


def measure(
    stack: Stack,
    scenario: Scenario,
    via: str,
    base_url: str,
    token: str,
    data: SeedData | None,
    args: argparse.Namespace,
    work_dir: Path,
    control_cpu: float | None,
) -> Row:
    row = Row(
        scenario.name,
        via,
        scenario.service,
        scenario.description,
        target_x=scenario.target if via == "direct" else None,
    )
    services = stack.running()
    if scenario.service not in services:
        row.skipped = f"{scenario.service} is not running"
        return row
    reason = preflight(base_url, scenario, token)
    if reason:
        row.skipped = reason
        return row
    script = work_dir / "lua" / f"{scenario.name}-{via}.lua"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(lua_script(scenario.request, token if scenario.service != CONTROL else None))
    tasks_url = services["tasks"].url if "tasks" in services else base_url
    if scenario.reset_status and data is not None:
        asyncio.run(reset_status(tasks_url, token, data.status_task_ids))
    if args.warmup > 0:
        run_wrk(base_url, script, duration_s=args.warmup, connections=args.connections)
        if scenario.reset_status and data is not None:
            asyncio.run(reset_status(tasks_url, token, data.status_task_ids))
        wait_outbox_drained(stack.database_url)
    samples = [
        one_run(stack, scenario, via, base_url, script, args, work_dir, token, data, tasks_url, i)
        for i in range(args.repeat)
    ]
    # The run with the (low) median CPU per request stands for the scenario; all are in the
    # JSON. Noise from a shared machine only adds CPU, so with two runs the lower one counts.
    samples.sort(key=lambda sample: sample[1])
    result, cpu_ms, others, backlog = samples[(len(samples) - 1) // 2]
    row.rps = result.rps
    row.p50_ms, row.p90_ms, row.p99_ms = result.p50_ms, result.p90_ms, result.p99_ms
    row.errors = sum(sample[0].errors for sample in samples)
    row.requests = result.requests
    row.statuses = result.statuses
    row.cpu_ms_per_req = cpu_ms
    row.cpu_runs = [round(sample[1], 4) for sample in samples]
    row.other_cpu_ms_per_req = others
    if backlog:
        row.other_cpu_ms_per_req["outbox_backlog_left"] = float(backlog)
    if control_cpu:
        row.x_control = row.cpu_ms_per_req / control_cpu
    return row


def one_run(
    stack: Stack,
    scenario: Scenario,
    via: str,
    base_url: str,
    script: Path,
    args: argparse.Namespace,
    work_dir: Path,
    token: str,
    data: SeedData | None,
    tasks_url: str,
    index: int,
) -> tuple[WrkResult, float, dict[str, float], int | None]:
    """One measured wrk run: its result, the service's CPU ms per request, the other services'
    CPU ms per request (delivery it caused included) and the outbox backlog left."""
    if index > 0 and scenario.reset_status and data is not None:
        asyncio.run(reset_status(tasks_url, token, data.status_task_ids))
    services = stack.running()
    pin_database_backends(stack.database_url)
    watched = {name: svc.pid for name, svc in services.items()}
    if args.pg_stats:
        pgstats.reset(admin_url())
    before = {name: cpu_seconds(pid) for name, pid in watched.items()}
    profiler = start_profiler(stack, scenario, via, args, work_dir) if index == 0 else None
    result = run_wrk(base_url, script, duration_s=args.duration, connections=args.connections)
    after = {name: cpu_seconds(pid) for name, pid in watched.items()}
    if args.pg_stats and index == 0:
        dbname = stack.database_url.rsplit("/", 1)[-1]
        stats = pgstats.read(admin_url(), dbname, result.requests)
        (work_dir / f"pg-stats-{scenario.name}-{via}.json").write_text(json.dumps(stats, indent=2))
        log(
            f"{scenario.name} {via}: PostgreSQL {stats['pg_exec_ms_per_req']} ms executing,"
            f" {stats['pg_plan_ms_per_req']} ms planning"
            f"{'' if stats['track_planning'] else ' (not measured: track_planning off)'},"
            f" {stats['pg_calls_per_req']} statements, {stats['pg_blocks_read_per_req']} blocks"
            " read (not in shared buffers) per request"
        )
    if profiler is not None:
        finish_profile(profiler, work_dir / f"profile-{scenario.name}.txt")
    backlog = wait_outbox_drained(stack.database_url) if scenario.request.method != "GET" else 0
    # Delivery the run caused (outbox relay in tasks, ingestion in audit) counts as "other".
    settled = {name: cpu_seconds(pid) for name, pid in watched.items()}
    requests = max(result.requests, 1)
    cpu_ms = (after[scenario.service] - before[scenario.service]) * 1000 / requests
    others: dict[str, float] = {}
    for name in watched:
        if name in (scenario.service, CONTROL):
            continue
        spent = (settled[name] - before[name]) * 1000 / requests
        if spent > 0:
            others[name] = round(spent, 3)
    return result, cpu_ms, others, backlog


def start_profiler(
    stack: Stack, scenario: Scenario, via: str, args: argparse.Namespace, work_dir: Path
) -> Any:
    wanted = {name.strip() for name in args.profile.split(",") if name.strip()}
    if via != "direct" or scenario.name not in wanted:
        return None
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path.home() / ".local/bin"))
    if py_spy is None:
        log("py-spy not found (uv tool install py-spy); profile skipped")
        return None
    # Collapsed stacks (one line per stack with its sample count): readable as text, and
    # flamegraph.pl / speedscope turn them into a picture.
    out = work_dir / f"profile-{scenario.name}.txt"
    service = stack.services[scenario.service]
    return stack.registry.start(
        f"py-spy-{scenario.name}",
        [
            py_spy,
            "record",
            "--pid",
            str(service.pid),
            "--duration",
            str(round(args.duration)),
            "--rate",
            "250",
            "--output",
            str(out),
            "--format",
            "raw",
            "--nonblocking",
        ],
        cpu=DRIVER_CPU,
    )


def finish_profile(profiler: Any, out: Path) -> None:
    """py-spy stops by itself after the run's duration; its summary goes beside the stacks."""
    from bench.profiles import summarize

    try:
        profiler.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        profiler.stop()
    if out.exists():
        summary = summarize(out)
        out.with_suffix(".summary.txt").write_text(summary + "\n")
        log("profile: " + " | ".join(summary.splitlines()[3:8]))
    else:
        log(f"py-spy wrote no profile; see {profiler.log_path}")


# --- the run ----------------------------------------------------------------------------------


def selected(scenarios: list[Scenario], names: str) -> list[Scenario]:
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        return scenarios
    known = {s.name for s in scenarios}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        log(f"unknown or unavailable scenarios: {', '.join(unknown)} (known: {', '.join(known)})")
    # The control always runs: every figure is a multiple of it.
    return [s for s in scenarios if s.name in wanted or s.name == "control"]


def with_profiled(names: str, profile: str) -> str:
    """Profiled scenarios run even when --scenarios does not name them."""
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        return names
    extra = [n.strip() for n in profile.split(",") if n.strip() and n.strip() not in wanted]
    return ",".join(wanted + extra)


def prepare_database(args: argparse.Namespace, log_dir: Path) -> tuple[str, bool]:
    """The bench database URL and whether its large data set is already loaded."""
    admin = admin_url()
    if args.scale == "large":
        name = "taskflow_bench_large"
        if not args.reseed and database_exists(admin, name):
            url = with_database(admin, name)
            if large.is_loaded(url):
                log(f"reusing {name} (pass --reseed to reload it)")
                migrate(url, log_dir)
                return url, True
        url = recreate_database(admin, name)
    else:
        url = recreate_database(admin, "taskflow_bench")
    log(f"database {url.rsplit('/', 1)[-1]} created; migrating")
    migrate(url, log_dir)
    return url, False


def run(args: argparse.Namespace) -> int:
    require_wrk()
    if cpu_count() < 2:
        log("one CPU only: services, wrk and PostgreSQL share it (figures are not comparable)")
    pin_self_to_driver_cpu()
    started_at = datetime.now(UTC)
    work_dir = RESULTS / f"{started_at:%Y%m%dT%H%M%SZ}-{args.scale}"
    log_dir = work_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    rows: list[Row] = []
    rss: dict[str, float] = {}
    with ProcessRegistry(log_dir) as registry:
        database_url, loaded = prepare_database(args, log_dir)
        stack = Stack(
            registry,
            database_url,
            log_level=args.log_level,
            pool_max_size=args.pool_size,
            server_stack=args.server_stack,
            control_stack=args.control_stack,
        )
        stack.start_issuer()
        try:
            token = bench_token(stack.issuer)
            start_services(stack, notes)
            data = SeedData(user_sub="bench-user-1", token=token)
            seeded = seed(stack, args, data, loaded, notes)
            stack.start_services(("control",))
            control_ids = control_task_ids(stack, data if seeded else None)
            gateway_url = start_gateway(stack, args, work_dir, notes)
            scenarios = selected(
                build_scenarios(data if seeded else None, control_ids),
                with_profiled(args.scenarios, args.profile),
            )
            rows = run_scenarios(stack, scenarios, token, data, args, work_dir, gateway_url, notes)
            rss = {name: round(rss_mb(svc.pid), 1) for name, svc in stack.running().items()}
            if args.sql_count:
                from bench.sqlcount import count_sql_per_request

                count_sql_per_request(stack, scenarios, rows, token, data, log_dir, log)
        finally:
            stack.stop_issuer()
    meta = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "command": "uv run python bench/run.py " + shlex.join(sys.argv[1:]),
        "scale": args.scale,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "repeat": args.repeat,
        "connections": args.connections,
        "service_cpu": SERVICE_CPU,
        "driver_cpu": DRIVER_CPU,
        "cpus": cpu_count(),
        "pool_max_size": args.pool_size,
        "log_level": args.log_level,
        "server_stack": args.server_stack,
        "control_stack": args.control_stack,
        "python": sys.version.split()[0],
        "seed": data.as_dict(),
        "notes": notes + data.notes,
    }
    json_path, md_path = write_results(work_dir, rows, meta, rss)
    for name in ("results.json", "results.md"):
        shutil.copyfile(work_dir / name, RESULTS / f"latest-{args.scale}.{name.split('.')[1]}")
    print()
    print(markdown_table(rows))
    print()
    print("RSS after the runs: " + ", ".join(f"{n} {v:.0f} MB" for n, v in rss.items()))
    for note in meta["notes"]:
        print(f"note: {note}")
    print(f"\nresults: {md_path.relative_to(REPO_ROOT)} and {json_path.name}; logs in {log_dir}")
    return 0


def start_services(stack: Stack, notes: list[str]) -> None:
    for name in SERVICE_NAMES:
        try:
            stack.start_services((name,))
            log(f"{name} up on {stack.services[name].url} (pid {stack.services[name].pid})")
        except BenchError as exc:
            notes.append(f"{name} did not start: {str(exc).splitlines()[0]}")
            log(f"{name} did not start; its scenarios are skipped:\n{exc}")


def seed(
    stack: Stack, args: argparse.Namespace, data: SeedData, loaded: bool, notes: list[str]
) -> bool:
    running = stack.running()
    if "tasks" not in running:
        notes.append("tasks service not running: no seed, tasks scenarios skipped")
        return False
    tasks_url = running["tasks"].url
    try:
        if args.scale == "large":
            large.load(stack.database_url, tasks_url, data, reuse=loaded, log=log)
        log("seeding through the API")
        asyncio.run(seed_small(tasks_url, data.token, args, data))
    except BenchError as exc:
        reason = "not implemented yet" if isinstance(exc, NotImplementedYet) else "failed"
        notes.append(f"seed {reason}: {str(exc).splitlines()[0][:300]}")
        log(f"seed {reason}, the scenarios needing it are skipped: {exc}")
        return bool(data.read_task_ids)
    if "audit" in running:
        status = asyncio.run(wait_audit_delivered(running["audit"].url, data.token, data))
        data.notes.append(status)
    backlog = wait_outbox_drained(stack.database_url)
    analyze(stack.database_url)
    log(f"seeded: {data.as_dict()} (outbox backlog {backlog})")
    return True


def analyze(database_url: str) -> None:
    """Planner statistics as a live database has them (autovacuum may not have run yet)."""
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("ANALYZE")


def control_task_ids(stack: Stack, data: SeedData | None) -> tuple[int, ...]:
    table = httpx.get(f"{stack.services['control'].url}/table", timeout=5).json()["query"]
    if "tasks" in table and data is not None and data.read_task_ids:
        return tuple(data.read_task_ids)
    return tuple(range(1, 1001))


def start_gateway(
    stack: Stack, args: argparse.Namespace, work_dir: Path, notes: list[str]
) -> str | None:
    if not args.through_gateway:
        return None
    from bench.gateway import start_gateway as start

    try:
        gateway = start(stack.registry, stack.services, work_dir / "nginx")
    except BenchError as exc:
        notes.append(f"gateway unavailable, gateway runs skipped: {str(exc).splitlines()[0]}")
        log(f"gateway unavailable: {exc}")
        return None
    stack.gateway = gateway
    log(f"nginx gateway on {gateway.url} (pid {gateway.pid})")
    return gateway.url


def run_scenarios(
    stack: Stack,
    scenarios: list[Scenario],
    token: str,
    data: SeedData,
    args: argparse.Namespace,
    work_dir: Path,
    gateway_url: str | None,
    notes: list[str],
) -> list[Row]:
    rows: list[Row] = []
    control_cpu: float | None = None
    for scenario in scenarios:
        vias: list[tuple[str, str | None]] = []
        if not args.gateway_only or scenario.name == "control":
            service = stack.services.get(scenario.service)
            vias.append(("direct", service.url if service else None))
        if args.through_gateway and scenario.gateway:
            vias.append(("gateway", gateway_url))
        direct_rps: float | None = None
        for via, url in vias:
            if url is None:
                rows.append(Row(scenario.name, via, scenario.service, skipped=f"no {via} endpoint"))
                continue
            log(f"{scenario.name} ({via})")
            try:
                row = measure(stack, scenario, via, url, token, data, args, work_dir, control_cpu)
            except BenchError as exc:
                row = Row(scenario.name, via, scenario.service, skipped=str(exc).splitlines()[0])
            if scenario.name == "control" and row.cpu_ms_per_req:
                control_cpu = row.cpu_ms_per_req
                row.x_control = 1.0
            if via == "direct":
                direct_rps = row.rps
            elif direct_rps and row.rps:
                row.gateway_share = row.rps / direct_rps
            rows.append(row)
            summary = row.skipped or (
                f"{row.rps:.0f} req/s, p99 {row.p99_ms:.1f} ms, {row.errors} errors, "
                f"{row.cpu_ms_per_req:.3f} CPU ms/req"
                + (f" = {row.x_control:.2f}x control" if row.x_control else "")
            )
            log(f"  → {summary}")
    control = next((s for s in scenarios if s.name == "control"), None)
    if control is not None and control_cpu and len(scenarios) > 1:
        rebase_on_control(stack, control, token, data, args, work_dir, rows, control_cpu, notes)
    return rows


def rebase_on_control(
    stack: Stack,
    control: Scenario,
    token: str,
    data: SeedData,
    args: argparse.Namespace,
    work_dir: Path,
    rows: list[Row],
    first_cpu: float,
    notes: list[str],
) -> None:
    """Measure the control again at the end; every multiple uses the mean of both runs, and
    the drift between them says how steady the machine was during the run."""
    url = stack.services[CONTROL].url
    log("control again (end of run)")
    end = measure(stack, control, "direct", url, token, data, args, work_dir, first_cpu)
    if not end.cpu_ms_per_req:
        return
    end.scenario = "control_end"
    reference = (first_cpu + end.cpu_ms_per_req) / 2
    first = next((r for r in rows if r.scenario == CONTROL and r.via == "direct"), None)
    p99s = [r.p99_ms for r in (first, end) if r is not None and r.p99_ms]
    p99_reference = sum(p99s) / len(p99s) if p99s else None
    for row in [*rows, end]:
        if row.cpu_ms_per_req:
            row.x_control = row.cpu_ms_per_req / reference
        if p99_reference and row.p99_ms:
            row.x_control_p99 = row.p99_ms / p99_reference
    rows.append(end)
    drift = end.cpu_ms_per_req / first_cpu - 1
    notes.append(
        f"control CPU/request: {first_cpu:.3f} ms at the start, {end.cpu_ms_per_req:.3f} ms at "
        f"the end ({drift:+.0%}); multiples use the mean {reference:.3f} ms"
    )
    if p99_reference:
        notes.append(
            f"control p99: {' and '.join(f'{p:.1f}' for p in p99s)} ms; p99 multiples use the"
            f" mean {p99_reference:.1f} ms (goal: ≤ 2x)"
        )
    log(f"  → control drift {drift:+.0%}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_exclusively("bench", lambda: run(args), say=log)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
