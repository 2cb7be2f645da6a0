"""What the user sees: problem lines, a progress bar on stderr, and the summary table."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TextIO

from .outcome import CATEGORIES, Outcome, Progress
from .source import Problem

BAR_WIDTH = 30
# Below this many rows an import is quick enough that a bar is noise.
BAR_THRESHOLD = 500


class ProgressBar(Progress):
    """``[#####.....]  45%  tasks  4500/10000`` redrawn in place on a terminal; on a pipe or a
    file, one line per 10 % so logs stay readable."""

    def __init__(self, stream: TextIO, *, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled
        self.tty = stream.isatty()
        self.total = 0
        self.done = 0
        self.last_decile = -1
        self.last_draw = 0.0

    def start(self, total: int) -> None:
        self.total = total
        self.enabled = self.enabled and total >= BAR_THRESHOLD

    def advance(self, stage: str, done: int) -> None:
        self.done += done
        if not self.enabled or not self.total:
            return
        fraction = min(self.done / self.total, 1.0)
        filled = int(fraction * BAR_WIDTH)
        line = (
            f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {fraction:4.0%}  "
            f"{stage:<13} {self.done}/{self.total}"
        )
        if self.tty:
            now = time.monotonic()
            if now - self.last_draw >= 0.1 or self.done >= self.total:
                self.stream.write("\r" + line)
                self.stream.flush()
                self.last_draw = now
        elif int(fraction * 10) > self.last_decile:
            self.last_decile = int(fraction * 10)
            self.stream.write(line + "\n")
            self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self.tty and self.total:
            self.stream.write("\n")
            self.stream.flush()


def problem_lines(problems: Iterable[Problem]) -> list[str]:
    return [problem.line() for problem in problems]


def summary_table(outcome: Outcome, *, dry_run: bool) -> str:
    """The table printed at the end: per kind of row, created / skipped / problems."""
    created = "would create" if dry_run else "created"
    header = f"{'':<15}{created:>13}{'skipped':>10}{'problems':>10}"
    lines = [header, "-" * len(header)]
    for name in CATEGORIES:
        tally = outcome.tallies[name]
        lines.append(f"{name:<15}{tally.created:>13}{tally.skipped:>10}{tally.problems:>10}")
    return "\n".join(lines)
