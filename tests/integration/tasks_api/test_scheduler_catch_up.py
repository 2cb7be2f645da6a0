"""The due-date scheduler against centuries of missed occurrences (issue 15, findings 1 and 2).

A real tasks process with a 0.2 s scheduler interval: 200 minutely recurring tasks due in 1900
and one due in year 263 (seeded as rows, as ``bench/scheduler_stall.py`` does with 1,001) each
get exactly one new occurrence, the first of their grid after now, while ``/health`` keeps
answering (a 2 s timeout per request is hang detection, not a performance assertion). The
measurement of the same scenario is ``bench/scheduler_stall.py``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
from taskflow_core.config import Settings
from taskflow_core.db import create_pool
from taskflow_tasks.recurrence.scheduler import spawn_due

from tests.integration.tasks_api.conftest import MakeUser, Outbox
from tests.support.overdue import caught_up, check_chains, seed_overdue_series

HANG = 2.0  # seconds without an answer from /health that mean the process is stuck


class HealthWatch:
    """Polls ``/health`` from a thread; remembers every request that failed or hung."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answered = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        with httpx.Client(timeout=HANG) as client:
            while not self._stop.is_set():
                try:
                    status = client.get(f"{self.url}/health").status_code
                    if status == 200:
                        self.answered += 1
                    else:
                        self.failures.append(f"HTTP {status}")
                except httpx.HTTPError as exc:
                    self.failures.append(type(exc).__name__)
                time.sleep(0.02)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(HANG + 1)


def test_catch_up_spawns_one_future_occurrence_per_chain_while_health_answers(
    make_user: MakeUser, tasks_url: str, db: psycopg.Connection[Any], outbox: Outbox
) -> None:
    alice = make_user()
    project_id = alice.default_project
    outbox.start()
    with HealthWatch(tasks_url) as watch:
        series = seed_overdue_series(db, project_id, count=200)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and caught_up(db, series) < len(series.source_ids):
            time.sleep(0.2)
        time.sleep(3 * 0.2 + 0.5)  # three more scheduler rounds: nothing more is spawned

    assert caught_up(db, series) == len(series.source_ids) == 201
    assert watch.failures == [], f"/health failed or hung: {watch.failures[:5]}"
    assert watch.answered > 0
    chains = check_chains(db, series)  # one occurrence each, in the future, on its grid
    assert chains["ok"] and chains["chains"] == 201, chains["problems"]
    spawned = [e for e in outbox.new() if e["action"] == "spawned_recurring"]
    assert len(spawned) == 201
    # The process reports how long its event loop was held (measured, not asserted here:
    # bench/scheduler_stall.py reports it).
    metrics = httpx.get(f"{tasks_url}/metrics", timeout=HANG).text
    assert 'taskflow_event_loop_lag_seconds{service="tasks"}' in metrics


def test_the_scheduler_ends_a_series_at_the_end_of_the_calendar(
    make_user: MakeUser, db_url: str, db: psycopg.Connection[Any], outbox: Outbox
) -> None:
    """A round run at the very end of year 9999 (the scheduler's clock is a parameter): the
    weekly task's next occurrence would be in year 10000, so the series ends, with the reason
    on the task's audit trail, instead of the round failing on every pass."""
    alice = make_user()
    pid = alice.default_project
    task = alice.task(
        pid,
        recurrence_pattern="weekly",
        recurrence_trigger="on_due_date",
        due_date="9999-12-30T00:00:00Z",
    )
    outbox.start()

    async def one_round() -> int:
        pool = create_pool(Settings(database_url=db_url), "scheduler-test")
        await pool.open(wait=True)
        try:
            return await spawn_due(pool, datetime(9999, 12, 31, 12, tzinfo=UTC))
        finally:
            await pool.close()

    assert asyncio.run(one_round()) == 1
    assert asyncio.run(one_round()) == 0  # not looked at again
    after = alice.get(f"/api/tasks/{task['id']}").json()
    assert after["has_spawned_next"] is True and after["spawn_count"] == 0
    assert db.execute(
        "SELECT count(*) AS n FROM tasks.tasks WHERE recurring_root_id = %s", (task["id"],)
    ).fetchone() == {"n": 0}
    (event,) = outbox.new()
    assert (event["entity_id"], event["action"]) == (task["id"], "updated")
    assert event["details"]["reason"] == "next occurrence would fall after 9999-12-31"
