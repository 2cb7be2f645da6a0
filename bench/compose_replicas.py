"""Replicas under load (issue 19): the compose stack with two replicas each of tasks, audit and
auth-verifier (deploy/docker/compose.replicas.yml) on podman, bench/load.py's 100 clients for
30 s through the gateway, and one replica of each service stopped a third of the way in.

    uv run python bench/compose_replicas.py [--clients 100] [--duration 30] [--keep]

It brings the stack up with deploy/podman/compose-up.sh (as root) and down at the end (unless
--keep), then reports: requests, failed requests, and of those how many the gateway had sent to
a replica being stopped (the only ones allowed to fail); writes and their audit entries (each
write exactly once, as bench/load.py checks it in the database); and the outbox relay's
deliveries summed over both tasks replicas against what both audit replicas stored and saw as
duplicates (each event delivered once across the replicas).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import (
    RESULTS,
    USERS,
    Router,
    check_consistency,
    drive,
    report,
    wait_relay_drained,
)
from bench.procs import BenchError, exclusive_run
from bench.seed import BENCH_TENANT
from bench.stack import REPO_ROOT

PODMAN = REPO_ROOT / "deploy" / "podman"
OVERRIDE = "deploy/docker/compose.replicas.yml"
PROJECT = "taskflow"
REPLICATED = ("tasks", "audit", "auth-verifier")


def log(message: str) -> None:
    print(f"[replicas {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def sh(*command: str, timeout: float = 1200) -> str:
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"{' '.join(command)}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return done.stdout


def containers_of(service: str, running_only: bool = False) -> list[str]:
    return sorted(
        sh(
            "podman", "ps", *([] if running_only else ["-a"]),
            "--filter", f"label=io.podman.compose.project={PROJECT}",
            "--filter", f"label=com.docker.compose.service={service}", "--format", "{{.Names}}",
        ).split()
    )  # fmt: skip


def address_of(container: str) -> str:
    return sh(
        "podman", "inspect", "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container,
    ).strip()  # fmt: skip


def json_lines(container: str, event: str | None = None) -> list[dict[str, Any]]:
    """The container's JSON log lines (structlog's, or nginx's access log)."""
    done = subprocess.run(
        ["podman", "logs", container], capture_output=True, text=True, check=False
    )
    lines = []
    for line in (done.stdout + done.stderr).splitlines():
        if not line.startswith("{"):
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event is None or item.get("event") == event:
            lines.append(item)
    return lines


def mint(sub: str) -> str:
    return sh(
        "podman", "run", "--rm", "-v", f"{PROJECT}_devissuer:/data", "taskflow-tools:dev",
        "token", "--sub", sub, "--email", f"{sub}@bench.test", "--name", sub,
        "--tenant", BENCH_TENANT, "--expires", "6h",
    ).strip()  # fmt: skip


async def stop_one_replica_each(after_s: float, stopped: dict[str, Any]) -> None:
    await asyncio.sleep(after_s)
    names = [containers_of(service)[-1] for service in REPLICATED]
    stopped["addresses"] = {name: address_of(name) for name in names}
    stopped["at"] = datetime.now(UTC)
    log(f"stopping {', '.join(names)} (SIGTERM, 10 s to finish in-flight requests)")
    started = time.monotonic()
    await asyncio.to_thread(sh, "podman", "stop", "-t", "10", *names)
    stopped["took_s"] = time.monotonic() - started
    log(f"stopped in {stopped['took_s']:.1f} s")


async def drive_and_stop(
    router: Router, tokens: list[tuple[str, str]], args: argparse.Namespace
) -> tuple[Any, float, dict[str, Any]]:
    stopped: dict[str, Any] = {}
    ledger, elapsed = await drive(
        router, tokens, args, during=lambda: stop_one_replica_each(args.stop_after, stopped)
    )
    return ledger, elapsed, stopped


def failures_at_gateway(stopped_addresses: set[str]) -> tuple[Counter[str], int]:
    """Gateway answers of 5xx during the run, by the kind of upstream they came from."""
    (gateway,) = containers_of("gateway")
    kinds: Counter[str] = Counter()
    for line in json_lines(gateway):
        if "status" not in line or int(line["status"]) < 500:
            continue
        upstreams = {a.split(":")[0] for a in re.split(r"[ ,:]+ ?", line["upstream_addr"]) if a}
        kind = "to a stopped replica" if upstreams & stopped_addresses else "elsewhere"
        kinds[kind] += 1
    return kinds, sum(kinds.values())


def relay_figures() -> dict[str, int]:
    delivered = sum(
        int(line.get("delivered", 0))
        for name in containers_of("tasks")
        for line in json_lines(name, "outbox_delivered")
    )
    stored = duplicates = 0
    for name in containers_of("audit"):
        for line in json_lines(name, "audit_ingested"):
            stored += int(line.get("stored", 0))
            duplicates += int(line.get("duplicates", 0))
    return {"relay_delivered": delivered, "audit_stored": stored, "audit_duplicates": duplicates}


def wait_until_served(router: Router, token: str, timeout_s: float = 120.0) -> None:
    """Every replica healthy is not yet every replica warm (first JWKS fetch, pools): the
    load starts once the gateway answers an authenticated read."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            response = httpx.get(
                router.url("/api/projects"),
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(1)
    raise BenchError(f"no authenticated read served in {timeout_s:.0f} s: {last}")


def run(args: argparse.Namespace) -> int:
    port = "8080"
    if not args.use_running:
        log("bringing the stack up with two replicas each (compose-up.sh)")
        sh("bash", str(PODMAN / "compose-up.sh"), OVERRIDE)
    try:
        for service in REPLICATED:
            running = containers_of(service, running_only=True)
            if len(running) != 2:
                raise BenchError(f"{service}: {len(running)} containers, expected 2: {running}")
        (postgres,) = containers_of("postgres")
        database_url = f"postgresql://taskflow:taskflow@{address_of(postgres)}:5432/taskflow"
        tokens = [(f"load-user-{u}", mint(f"load-user-{u}")) for u in range(USERS)]
        router = Router(f"http://127.0.0.1:{port}", {})
        wait_until_served(router, tokens[0][1])
        ledger, elapsed, stopped = asyncio.run(drive_and_stop(router, tokens, args))
        log(f"{ledger.requests} requests in {elapsed:.1f}s; waiting for the relay to drain")
        backlog = wait_relay_drained(database_url)
        consistency = check_consistency(database_url, ledger)
        consistency["outbox_backlog_left"] = backlog
        at_gateway, gateway_5xx = failures_at_gateway(set(stopped["addresses"].values()))
        relay = relay_figures()
    finally:
        if not args.keep and not args.use_running:
            sh("bash", str(PODMAN / "compose-down.sh"))
    text = report(ledger, elapsed, consistency, "the nginx gateway, 2 replicas each", args)
    failed_kinds = Counter(f.split(": ", 1)[1].split(" ", 1)[0] for f in ledger.failures)
    text += "\n\n" + "\n".join(
        [
            f"## One replica of each stopped after {args.stop_after:.0f} s: "
            f"{', '.join(stopped['addresses'])} (podman stop took {stopped['took_s']:.1f} s)",
            "",
            f"- requests {ledger.requests}, failed {ledger.errors} "
            f"(by answer: {dict(failed_kinds)})",
            f"- gateway 5xx answers {gateway_5xx}: {dict(at_gateway)}",
            f"- writes {consistency['writes']}, audit entries for them "
            f"{consistency['audit_entries']}, missing {consistency['missing_audit_count']}, "
            f"duplicated {consistency['duplicate_audit_count']}, outbox backlog left {backlog}",
            f"- relay: events delivered by the tasks replicas {relay['relay_delivered']}, "
            f"stored by the audit replicas {relay['audit_stored']}, "
            f"seen again as duplicates {relay['audit_duplicates']}",
        ]
    )
    started_at = datetime.now(UTC)
    work_dir = RESULTS / f"{started_at:%Y%m%dT%H%M%SZ}-replicas"
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "replicas.md").write_text(text + "\n")
    print()
    print(text)
    print(f"\nresults: {work_dir / 'replicas.md'}")
    only_in_flight = at_gateway.get("elsewhere", 0) == 0 and ledger.errors <= gateway_5xx
    return 0 if only_in_flight and consistency.get("ok") and backlog == 0 else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, s")
    parser.add_argument(
        "--stop-after", type=float, default=None, help="seconds from the start (default: a third)"
    )
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument(
        "--use-running", action="store_true", help="a stack compose-up.sh already started"
    )
    args = parser.parse_args(argv)
    if args.stop_after is None:
        args.stop_after = args.duration / 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with exclusive_run(say=log):
            return run(args)
    except BenchError as exc:
        print(f"compose_replicas: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
