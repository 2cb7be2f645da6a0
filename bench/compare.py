"""Side by side: the small and the large data set (issue 8: every figure within 25 %).

    uv run python bench/compare.py [bench/results/latest-small.json bench/results/latest-large.json]

Compares CPU per request as a multiple of each run's own control, so two runs made at different
moments of a shared machine stay comparable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _direct(path: Path) -> dict[str, dict[str, Any]]:
    rows = json.loads(path.read_text())["rows"]
    return {r["scenario"]: r for r in rows if r["via"] == "direct" and not r["skipped"]}


def compare(small_path: Path, large_path: Path) -> str:
    small, large = _direct(small_path), _direct(large_path)
    lines = [
        "| scenario | small CPU ms/req | small x control | large CPU ms/req | large x control "
        "| large / small | within 25 % |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, s in small.items():
        big = large.get(name)
        if big is None or name.startswith("control"):
            continue
        ratio = big["x_control"] / s["x_control"] if s["x_control"] else None
        verdict = "" if ratio is None else ("yes" if ratio <= 1.25 else "no")
        lines.append(
            f"| {name} | {s['cpu_ms_per_req']:.3f} | {s['x_control']:.2f} "
            f"| {big['cpu_ms_per_req']:.3f} | {big['x_control']:.2f} "
            f"| {'' if ratio is None else f'{ratio:.2f}'} | {verdict} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    small = Path(args[0]) if args else RESULTS / "latest-small.json"
    large = Path(args[1]) if len(args) > 1 else RESULTS / "latest-large.json"
    for path in (small, large):
        if not path.exists():
            print(f"compare: {path} does not exist; run bench/run.py first", file=sys.stderr)
            return 2
    print(compare(small, large))
    return 0


if __name__ == "__main__":
    sys.exit(main())
