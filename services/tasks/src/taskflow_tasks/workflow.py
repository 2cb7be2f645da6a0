"""Task domain rules, free of I/O: the status workflow, who may change a task, progress,
recurrence and the subtask hierarchy. Resources and the scheduler call these; stores never do."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from taskflow_core.errors import APIError, BadRequest, Forbidden

STATUSES: Final = ("pending", "in_progress", "review", "completed", "blocked")
PRIORITIES: Final = ("low", "medium", "high", "critical")
RECURRENCE_PATTERNS: Final = ("1m", "5m", "10m", "15m", "30m", "1h", "daily", "weekly", "monthly")
RECURRENCE_TRIGGERS: Final = ("on_complete", "on_due_date", "both")
SPAWN_ON_DUE_TRIGGERS: Final = ("on_due_date", "both")
SPAWN_ON_COMPLETE_TRIGGERS: Final = ("on_complete", "both")

# The API's transition table (reference §2.6). The order of each list is the order the
# error message names them in, as the old API did.
VALID_TRANSITIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "pending": ("in_progress", "blocked", "completed"),
    "in_progress": ("review", "completed", "blocked"),
    "review": ("in_progress", "completed"),
    "completed": ("review",),
    "blocked": ("pending", "in_progress"),
}

PRIORITY_RANK: Final[Mapping[str, int]] = {"critical": 0, "high": 1, "medium": 2, "low": 3}

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

CIRCULAR_REFERENCE = "Circular reference detected"
NOT_YOURS = "You can only modify tasks assigned to you or unassigned tasks"
OWN_REVIEW = "You cannot approve or reject your own task unless you own the project"


# --- status workflow -------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusChange:
    """What a status change writes besides the status itself."""

    status: str
    started_at: datetime | None
    completed_at: datetime | None
    progress_percent: int
    completes: bool  # the task became completed by this change (recurrence may spawn)


def invalid_transition_message(current: str, new: str) -> str:
    valid = list(VALID_TRANSITIONS.get(current, ()))
    return f"Invalid status transition from '{current}' to '{new}'. Valid transitions: {valid}"


def change_status(
    *,
    current: str,
    new: str,
    started_at: datetime | None,
    completed_at: datetime | None,
    progress_percent: int,
    now: datetime,
) -> StatusChange:
    """Apply the transition table: ``started_at`` is set on the first move to in_progress and
    never reset; completion stamps ``completed_at`` (every time) and forces progress to 100."""
    if new not in VALID_TRANSITIONS.get(current, ()):
        raise BadRequest(invalid_transition_message(current, new))
    if new == "in_progress" and started_at is None:
        started_at = now
    if new == "completed":
        return StatusChange(new, started_at, now, 100, completes=True)
    return StatusChange(new, started_at, completed_at, progress_percent, completes=False)


def approve(*, current: str, started_at: datetime | None, now: datetime) -> StatusChange:
    """review → completed, as the dedicated approve endpoint does."""
    if current != "review":
        raise BadRequest("Can only approve tasks in 'review' status")
    return StatusChange("completed", started_at, now, 100, completes=True)


def reject(
    *, current: str, started_at: datetime | None, completed_at: datetime | None, progress: int
) -> StatusChange:
    """review → in_progress; progress is left as it was."""
    if current != "review":
        raise BadRequest("Can only reject tasks in 'review' status")
    return StatusChange("in_progress", started_at, completed_at, progress, completes=False)


def check_progress_allowed(status: str) -> None:
    """Progress is reported only while a task is being worked on."""
    if status != "in_progress":
        raise BadRequest("Can only update progress for in_progress tasks")


# --- who may change a task (spec FR-011) ----------------------------------------------------


def check_may_modify(*, assignee_id: int | None, caller_worker_id: int, is_owner: bool) -> None:
    """Project owners change any task; other members only tasks assigned to them or to nobody."""
    if is_owner or assignee_id is None or assignee_id == caller_worker_id:
        return
    raise Forbidden(NOT_YOURS)


def check_may_review(*, assignee_id: int | None, caller_worker_id: int, is_owner: bool) -> None:
    """Approve/reject: the FR-011 rule, and the assignee may not judge their own work unless
    they own the project (a review needs a second pair of eyes)."""
    check_may_modify(assignee_id=assignee_id, caller_worker_id=caller_worker_id, is_owner=is_owner)
    if not is_owner and assignee_id == caller_worker_id:
        raise Forbidden(OWN_REVIEW)


# --- recurrence -------------------------------------------------------------------------------

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


# --- subtasks --------------------------------------------------------------------------------


def subtask_progress(children_progress: Iterable[int]) -> int | None:
    """The roll-up a parent shows: the floor of its direct subtasks' average progress, or
    None when it has no subtasks. The parent's own progress_percent is not touched."""
    values = list(children_progress)
    if not values:
        return None
    return sum(values) // len(values)


def check_reparent(
    *, task_id: int, new_parent_id: int, ancestors_of_new_parent: Iterable[int]
) -> None:
    """Refuse a parent that is the task itself or one of its descendants. The caller passes
    the chain of ancestors above ``new_parent_id`` (nearest first)."""
    if new_parent_id == task_id or task_id in set(ancestors_of_new_parent):
        raise BadRequest(CIRCULAR_REFERENCE)


def parent_error(
    *, parent_project_id: int | None, project_id: int, parent_id: int
) -> APIError | None:
    """The 400 for a parent that is missing or in another project, or None if it is fine."""
    if parent_project_id is None:
        return BadRequest(f"Parent task {parent_id} not found")
    if parent_project_id != project_id:
        return BadRequest("Parent task must be in the same project")
    return None
