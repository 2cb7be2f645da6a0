"""Recurrence rules, free of I/O: the patterns and triggers, when the next occurrence is due,
and whether a series has room for it. The spawner (``spawning``) and the task resources call
these; stores never do."""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Final

RECURRENCE_PATTERNS: Final = ("1m", "5m", "10m", "15m", "30m", "1h", "daily", "weekly", "monthly")
RECURRENCE_TRIGGERS: Final = ("on_complete", "on_due_date", "both")
SPAWN_ON_DUE_TRIGGERS: Final = ("on_due_date", "both")
SPAWN_ON_COMPLETE_TRIGGERS: Final = ("on_complete", "both")

MAX_OCCURRENCES_MEANING: Final = (
    "max_occurrences is the total number of tasks in a recurring series, the original task "
    "included: with max_occurrences=3 the original and two spawned occurrences exist, then the "
    "series stops. null means unlimited. The same rule applies whether an occurrence is spawned "
    "on completion or when due."
)

SERIES_END_REASON: Final = "next occurrence would fall after 9999-12-31"
RECURRENCE_PATTERN_MEANING: Final = (
    "1m to weekly: a fixed interval; monthly: the same day and time one calendar month later, "
    "clamped to that month's last day (31 Jan -> 28 Feb). The next occurrence is due one step "
    "after the task's due date (after the moment of completion for an undated task). When it "
    "is spawned because the task is due (trigger on_due_date or both), steps already in the "
    "past are skipped in one go: a task overdue for years spawns one occurrence, the first one "
    "after now."
)
SERIES_END_MEANING: Final = (
    "A series ends when its next occurrence would fall after 9999-12-31T23:59:59.999999Z, "
    "the last instant the API can hold: completing the task then spawns nothing, and the "
    "due-date scheduler marks it has_spawned_next with the audit reason "
    f"'{SERIES_END_REASON}'."
)


_FIXED_INTERVALS: Final[Mapping[str, timedelta]] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "10m": timedelta(minutes=10),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
}


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months later; a day past the end of the
    target month is clamped to its last day (31 Jan + 1 month = 28/29 Feb). ValueError when
    the result falls outside years 1..9999."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _months_between(start: datetime, end: datetime) -> int:
    return (end.year - start.year) * 12 + end.month - start.month


def advance(pattern: str, moment: datetime, steps: int = 1) -> datetime | None:
    """``steps`` recurrence steps after ``moment``, or None when that falls after the end of
    the calendar (9999-12-31, see SERIES_END_MEANING)."""
    if pattern != "monthly" and pattern not in _FIXED_INTERVALS:
        raise ValueError(f"unknown recurrence pattern {pattern!r}")
    try:
        if pattern == "monthly":
            return add_months(moment, steps)
        return moment + _FIXED_INTERVALS[pattern] * steps
    except (OverflowError, ValueError):  # past year 9999
        return None


def _steps_to_pass(pattern: str, start: datetime, now: datetime) -> int:
    """The fewest steps (at least one) that take ``start`` past ``now``: arithmetic, so a
    due date centuries ago costs the same as one a minute ago."""
    if start > now:
        return 1
    if pattern == "monthly":
        # Occurrence k falls in the month k months after start's, so the first one after now
        # is in now's month or the next.
        steps = max(1, _months_between(start, now))
        landing = advance(pattern, start, steps)
        return steps if landing is not None and landing > now else steps + 1
    return (now - start) // _FIXED_INTERVALS[pattern] + 1


def next_due(
    pattern: str, *, due_date: datetime | None, now: datetime, catch_up: bool = False
) -> datetime | None:
    """When the next occurrence is due: one step after the current due date, or after ``now``
    for an undated task. With ``catch_up`` (the due-date scheduler) it is the first point of
    the series' grid after ``now``, so a scheduler that was down spawns one occurrence, not a
    backlog of already-overdue ones. None when that occurrence would fall after the end of the
    calendar: the series ends (SERIES_END_MEANING)."""
    base = due_date or now
    steps = _steps_to_pass(pattern, base, now) if catch_up else 1
    return advance(pattern, base, steps)


def series_has_room(*, max_occurrences: int | None, tasks_in_series: int) -> bool:
    """Whether another occurrence may be spawned. ``tasks_in_series`` counts the original
    task and every occurrence spawned from it (see MAX_OCCURRENCES_MEANING)."""
    return max_occurrences is None or tasks_in_series < max_occurrences


def should_spawn_on_complete(
    *, is_recurring: bool, pattern: str | None, trigger: str, has_spawned_next: bool
) -> bool:
    return bool(
        is_recurring and pattern and trigger in SPAWN_ON_COMPLETE_TRIGGERS and not has_spawned_next
    )
