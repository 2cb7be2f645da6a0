"""The outbox relay's pure parts: backoff and reading the acknowledgement."""

from __future__ import annotations

import pytest
from taskflow_tasks.outbox.rules import Backoff, fit_batch, read_acknowledgement


def test_backoff_doubles_up_to_the_cap() -> None:
    backoff = Backoff(base=1.0, cap=30.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(0, 8)] == [0.0, 1, 2, 4, 8, 16, 30, 30]
    jittered = Backoff(base=1.0, cap=30.0, jitter=0.2)
    assert jittered.delay(3, rand=lambda: 0.0) == pytest.approx(3.2)
    assert jittered.delay(3, rand=lambda: 1.0) == pytest.approx(4.8)


def test_backoff_for_interval() -> None:
    assert Backoff.for_interval(1.0).cap == 30.0
    assert Backoff.for_interval(0.1).cap == 3.0
    assert Backoff.for_interval(5.0).cap == 30.0


def test_acknowledgement_matches_results_by_event_id() -> None:
    batch = [{"id": i, "event_id": f"e{i}"} for i in (10, 11, 12, 13)]
    body = {
        "results": [
            {"event_id": "e12", "status": "rejected", "reason": "actor_type: bad"},
            {"event_id": "e10", "status": "stored", "id": 1},
            {"event_id": "e11", "status": "duplicate", "id": 0},
        ]
    }
    ack = read_acknowledgement(batch, body)
    assert ack.delivered == [10, 11]
    assert ack.rejected == {12: "rejected by the audit service: actor_type: bad"}
    assert ack.missing == [13]
    assert read_acknowledgement(batch, "nonsense").missing == [10, 11, 12, 13]


def test_batches_fit_the_byte_budget_but_never_come_out_empty() -> None:
    rows = [{"id": i, "size": size} for i, size in enumerate([300, 300, 300, 50])]
    assert [r["id"] for r in fit_batch(rows, 700)] == [0, 1]
    assert [r["id"] for r in fit_batch(rows, 10_000)] == [0, 1, 2, 3]
    assert [r["id"] for r in fit_batch(rows, 10)] == [0]  # alone, even when too big
