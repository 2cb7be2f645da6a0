"""Recurrence over the whole calendar (issue 15, findings 1 and 2), property-based.

For every pattern, the occurrence after a catch-up is the first point of the series' grid after
``now``: strictly after it, at most one interval after it, on the grid (fixed intervals: a whole
number of intervals from the due date; monthly: the due date's day, clamped to the month's
length, at the same time). It is computed in one step whatever the gap, and an occurrence that
would fall after 9999-12-31 ends the series (``None``) instead of raising.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from taskflow_tasks.recurrence import rules

FIXED = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "10m": timedelta(minutes=10),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
}
FIRST = datetime.min.replace(tzinfo=UTC)
LAST = datetime.max.replace(tzinfo=UTC)
NOW = datetime(2026, 12, 4, 19, 45, 10, tzinfo=UTC)
MONTH_AT_MOST = timedelta(days=31)  # the longest gap between two monthly occurrences

instants = st.datetimes(min_value=datetime.min, max_value=datetime.max).map(
    lambda moment: moment.replace(tzinfo=UTC)
)
patterns = st.sampled_from(rules.RECURRENCE_PATTERNS)


def _months_between(start: datetime, end: datetime) -> int:
    return (end.year - start.year) * 12 + end.month - start.month


def _micros(moment: datetime) -> int:
    return (moment - FIRST) // timedelta(microseconds=1)


def test_every_pattern_is_covered() -> None:
    assert set(rules.RECURRENCE_PATTERNS) == {*FIXED, "monthly"}


@settings(max_examples=400, deadline=None)
@given(pattern=st.sampled_from(sorted(FIXED)), due=instants, now=instants)
@example(pattern="1m", due=datetime(263, 1, 1, tzinfo=UTC), now=NOW)
@example(pattern="1m", due=FIRST, now=LAST - timedelta(seconds=30))
@example(pattern="weekly", due=datetime(9999, 12, 30, tzinfo=UTC), now=NOW)
@example(pattern="weekly", due=FIRST, now=LAST)
def test_fixed_interval_catch_up_is_the_first_grid_point_after_now(
    pattern: str, due: datetime, now: datetime
) -> None:
    interval = FIXED[pattern]
    result = rules.next_due(pattern, due_date=due, now=now, catch_up=True)

    # The same occurrence in integer microseconds, where no calendar ends.
    step = interval // timedelta(microseconds=1)
    gap = _micros(now) - _micros(due)
    expected = _micros(due) + step * max(1, gap // step + 1)
    if expected > _micros(LAST):
        assert result is None
        return
    assert result is not None
    assert _micros(result) == expected
    assert result > now and result > due
    assert (result - due) % interval == timedelta(0)
    assert result - interval <= now or result - interval == due
    if due <= now:
        assert result - now <= interval


@settings(max_examples=400, deadline=None)
@given(due=instants, now=instants)
@example(due=datetime(2025, 1, 31, 9, tzinfo=UTC), now=datetime(2025, 3, 1, tzinfo=UTC))
@example(due=datetime(2024, 2, 29, 9, tzinfo=UTC), now=datetime(2028, 2, 29, 9, tzinfo=UTC))
@example(due=datetime(263, 5, 31, tzinfo=UTC), now=datetime(2026, 6, 30, 23, tzinfo=UTC))
@example(due=datetime(9999, 12, 15, tzinfo=UTC), now=NOW)
@example(due=datetime(9999, 11, 30, tzinfo=UTC), now=datetime(9999, 12, 30, tzinfo=UTC))
@example(due=FIRST, now=LAST)
def test_monthly_catch_up_keeps_the_day_and_clamps_it(due: datetime, now: datetime) -> None:
    result = rules.next_due("monthly", due_date=due, now=now, catch_up=True)

    # The series' last occurrence the calendar holds is in December 9999.
    last_in_calendar = _months_between(due, LAST)
    if last_in_calendar < 1 or rules.add_months(due, last_in_calendar) <= now:
        assert result is None
        return
    assert result is not None
    months = _months_between(due, result)
    assert months >= 1
    assert result == rules.add_months(due, months)
    assert (result.hour, result.minute, result.second, result.microsecond) == (
        due.hour,
        due.minute,
        due.second,
        due.microsecond,
    )
    month_length = (rules.add_months(result.replace(day=1), 1) - result.replace(day=1)).days
    assert result.day == min(due.day, month_length)
    assert result > now
    assert months == 1 or rules.add_months(due, months - 1) <= now
    if due <= now:
        assert result - now <= MONTH_AT_MOST


@settings(max_examples=300, deadline=None)
@given(pattern=patterns, due=instants, now=instants)
@example(pattern="weekly", due=datetime(9999, 12, 30, tzinfo=UTC), now=FIRST)
@example(pattern="monthly", due=datetime(9999, 12, 1, tzinfo=UTC), now=FIRST)
@example(pattern="1m", due=LAST, now=FIRST)
def test_one_step_on_completion_or_the_end_of_the_series(
    pattern: str, due: datetime, now: datetime
) -> None:
    result = rules.next_due(pattern, due_date=due, now=now)
    if pattern == "monthly":
        expected = None if due.year == 9999 and due.month == 12 else rules.add_months(due, 1)
    else:
        expected = due + FIXED[pattern] if LAST - due >= FIXED[pattern] else None
    assert result == expected


@given(pattern=patterns, now=instants)
def test_an_undated_task_recurs_one_step_after_now(pattern: str, now: datetime) -> None:
    result = rules.next_due(pattern, due_date=None, now=now, catch_up=True)
    assert result is None or result == rules.next_due(pattern, due_date=now, now=now)


def _within(seconds: float, compute: Any) -> Any:
    """``compute()``, or a test failure if it has not returned after ``seconds`` (a hang
    detector for code that used to loop for hours, not a timing assertion)."""
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(compute()), daemon=True)
    worker.start()
    worker.join(seconds)
    if not outcome:
        pytest.fail(f"still computing after {seconds:.0f} s")
    return outcome[0]


@pytest.mark.parametrize("pattern", rules.RECURRENCE_PATTERNS)
def test_catching_up_from_year_263_is_one_step(pattern: str) -> None:
    due = datetime(263, 3, 31, 8, 30, tzinfo=UTC)
    result = _within(10.0, lambda: rules.next_due(pattern, due_date=due, now=NOW, catch_up=True))
    assert NOW < result <= NOW + FIXED.get(pattern, MONTH_AT_MOST)
