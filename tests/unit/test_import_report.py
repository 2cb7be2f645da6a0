"""The import's output: the progress bar on stderr and the summary table."""

from __future__ import annotations

import io

from taskflow_cli.importer.report import ProgressBar, summary_table
from taskflow_cli.importer.write import Outcome


def test_progress_on_a_pipe_is_one_line_per_tenth() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream)
    bar.start(1000)
    for _ in range(100):
        bar.advance("tasks", 10)
    bar.finish()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11  # 0 %, 10 %, ..., 100 %
    assert lines[-1] == "[##############################] 100%  tasks         1000/1000"


def test_small_imports_draw_no_bar() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream)
    bar.start(20)
    bar.advance("tasks", 20)
    bar.finish()
    assert stream.getvalue() == ""


def test_summary_table_lists_created_skipped_and_problems() -> None:
    outcome = Outcome()
    outcome.tallies["tasks"].created = 12
    outcome.tallies["tasks"].skipped = 3
    outcome.tallies["projects"].problems = 1
    table = summary_table(outcome, dry_run=False).splitlines()
    assert table[0].split() == ["created", "skipped", "problems"]
    assert table[3].split() == ["projects", "0", "0", "1"]
    assert table[5].split() == ["tasks", "12", "3", "0"]
    assert "would create" in summary_table(outcome, dry_run=True)
