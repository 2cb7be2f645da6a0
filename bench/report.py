"""Results of a run: one row per (scenario, route), written as JSON and a markdown table."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    scenario: str
    via: str  # "direct" or "gateway"
    service: str
    description: str = ""
    rps: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    errors: int | None = None
    requests: int | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    cpu_ms_per_req: float | None = None
    cpu_runs: list[float] = field(default_factory=list)  # every measured run, sorted
    x_control: float | None = None
    target_x: float | None = None
    x_control_p99: float | None = None  # p99 as a multiple of the control's (mean of its runs)
    other_cpu_ms_per_req: dict[str, float] = field(default_factory=dict)
    gateway_share: float | None = None  # gateway req/s as a share of the direct req/s
    sql_statements_per_req: float | None = None
    sql_round_trips_per_req: float | None = None
    skipped: str | None = None

    @property
    def verdict(self) -> str:
        if self.skipped or self.x_control is None or self.target_x is None or self.via != "direct":
            return ""
        return "ok" if self.x_control <= self.target_x else "over"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_table(rows: list[Row]) -> str:
    head = (
        "| scenario | via | req/s | p50 ms | p90 ms | p99 ms | p99 x control | errors | CPU ms/req "
        "| x control | target | SQL stmts (trips)/req | other CPU ms/req |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"
    )
    lines = [head]
    for row in rows:
        if row.skipped:
            lines.append(
                f"| {row.scenario} | {row.via} | skipped: {row.skipped} | | | | | | | | | | |"
            )
            continue
        target = "" if row.target_x is None else f"≤ {row.target_x:g}x {row.verdict}".strip()
        if row.via == "gateway" and row.gateway_share is not None:
            target = f"≥ 60% of direct: {row.gateway_share:.0%}"
        others = ", ".join(
            f"{name} {value:.2f}"
            for name, value in row.other_cpu_ms_per_req.items()
            if value >= 0.01
        )
        errors = str(row.errors)
        if row.statuses:
            errors += " (" + ", ".join(f"{k}:{v}" for k, v in sorted(row.statuses.items())) + ")"
        sql = ""
        if row.sql_statements_per_req is not None:
            sql = f"{row.sql_statements_per_req:.1f} ({_num(row.sql_round_trips_per_req, 1)})"
        lines.append(
            f"| {row.scenario} | {row.via} | {_num(row.rps, 0)} | {_num(row.p50_ms)} "
            f"| {_num(row.p90_ms)} | {_num(row.p99_ms)} | {_num(row.x_control_p99)} | {errors} "
            f"| {_num(row.cpu_ms_per_req, 3)} "
            f"| {_num(row.x_control)} | {target} | {sql} | {others} |"
        )
    return "\n".join(lines)


def write_results(
    out_dir: Path, rows: list[Row], meta: dict[str, Any], rss: dict[str, float]
) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "meta": meta,
        "rss_mb": rss,
        "rows": [asdict(r) | {"verdict": r.verdict} for r in rows],
    }
    json_path = out_dir / "results.json"
    json_path.write_text(json.dumps(payload, indent=2))
    md = [f"# TaskFlow benchmark, {meta.get('started_at', '')}", ""]
    md.append(f"Command: `{meta.get('command', '')}`  ")
    md.append(
        f"Scale: {meta.get('scale')}; duration {meta.get('duration_s')} s per run, "
        f"{meta.get('connections')} connections, wrk -t1 keep-alive; services pinned to CPU "
        f"{meta.get('service_cpu')}, wrk/nginx/PostgreSQL backends on CPU {meta.get('driver_cpu')}."
    )
    if meta.get("server_stack"):
        md.append(
            f"Server stack (uvicorn loop-http): services {meta.get('server_stack')}, "
            f"control {meta.get('control_stack')}."
        )
    md.append("")
    md.append(markdown_table(rows))
    md.append("")
    md.append(
        "Resident memory after the runs: "
        + ", ".join(f"{name} {value:.0f} MB" for name, value in rss.items())
        + " (goal < 150 MB each)."
    )
    for note in meta.get("notes", []):
        md.append(f"- {note}")
    md_path = out_dir / "results.md"
    md_path.write_text("\n".join(md) + "\n")
    return json_path, md_path
