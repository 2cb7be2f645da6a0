"""Tools some tests need beyond Python (nginx, chromium, pgbouncer): skipped on a fresh machine,
required in CI (TASKFLOW_REQUIRE_E2E=1), where .ci/run installs them."""

from __future__ import annotations

import os

import pytest


def require_tool(reason: str) -> None:
    """Skip with ``reason``, or fail when the run requires every tool (CI)."""
    if os.environ.get("TASKFLOW_REQUIRE_E2E") == "1":
        pytest.fail(f"{reason} (TASKFLOW_REQUIRE_E2E=1)")
    pytest.skip(reason)
