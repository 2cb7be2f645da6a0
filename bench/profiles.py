"""Reading py-spy's collapsed stacks (``--format raw``): where a service spends its CPU.

uv run python bench/profiles.py bench/results/<run>/profile-get_task.txt [--top 25]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    """``func (…/site-packages/pkg/mod.py:12)`` → ``pkg/mod.py:func``."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{match['func']}"


def summarize(path: Path, top: int = 25) -> str:
    """Self time (the frame on top of the stack) and inclusive time, as shares of all samples."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if total == 0:
        return f"{path.name}: no samples"
    out = [f"{path.name}: {total} samples", "", "self time:"]
    out += [f"  {n / total:6.1%}  {frame}" for frame, n in self_time.most_common(top)]
    out += ["", "inclusive (TaskFlow code and libraries it calls):"]
    ours = [
        (frame, n)
        for frame, n in inclusive.most_common()
        if any(
            k in frame
            for k in (
                "taskflow",
                "falcon/",
                "psycopg",
                "marshmallow",
                "joserfc",
                "structlog",
                "orjson",
                "uvicorn/",
                "h11/",
                "httpx",
            )
        )
    ]
    out += [f"  {n / total:6.1%}  {frame}" for frame, n in ours[:top]]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    print(summarize(args.profile, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
