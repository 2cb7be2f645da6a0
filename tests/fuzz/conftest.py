"""The fuzz run's seed in pytest's header (when tests/fuzz is named on the command line, as CI's
fuzz stage does), so a run's findings can be replayed."""

from __future__ import annotations

import pytest

from tests.fuzz.support import MAX_EXAMPLES, replay_hint


def pytest_report_header(config: pytest.Config) -> str:
    return f"{replay_hint()} ({MAX_EXAMPLES} examples per operation)"
