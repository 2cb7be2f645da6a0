"""The task domain rules: transitions, permissions, progress, recurrence, hierarchy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from taskflow_core.errors import APIError
from taskflow_tasks.recurrence import rules as recurrence
from taskflow_tasks.tasks import workflow as wf

NOW = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(days=2)

ALLOWED = {
    ("pending", "in_progress"),
    ("pending", "completed"),
    ("pending", "blocked"),
    ("in_progress", "review"),
    ("in_progress", "completed"),
    ("in_progress", "blocked"),
    ("review", "in_progress"),
    ("review", "completed"),
    ("completed", "review"),
    ("blocked", "pending"),
    ("blocked", "in_progress"),
}


@pytest.mark.parametrize("current", wf.STATUSES)
@pytest.mark.parametrize("new", wf.STATUSES)
def test_transition_table_matches_reference(current: str, new: str) -> None:
    kwargs = dict(
        current=current, new=new, started_at=None, completed_at=None, progress_percent=10, now=NOW
    )
    if (current, new) in ALLOWED:
        assert wf.change_status(**kwargs).status == new  # type: ignore[arg-type]
    else:
        with pytest.raises(APIError) as err:
            wf.change_status(**kwargs)  # type: ignore[arg-type]
        assert err.value.status == 400


def test_invalid_transition_message_lists_valid_targets() -> None:
    with pytest.raises(APIError) as err:
        wf.change_status(
            current="blocked",
            new="completed",
            started_at=None,
            completed_at=None,
            progress_percent=0,
            now=NOW,
        )
    assert err.value.message == (
        "Invalid status transition from 'blocked' to 'completed'. "
        "Valid transitions: ['pending', 'in_progress']"
    )


def test_started_at_set_once_and_never_reset() -> None:
    first = wf.change_status(
        current="pending",
        new="in_progress",
        started_at=None,
        completed_at=None,
        progress_percent=0,
        now=NOW,
    )
    assert first.started_at == NOW
    again = wf.change_status(
        current="blocked",
        new="in_progress",
        started_at=EARLIER,
        completed_at=None,
        progress_percent=0,
        now=NOW,
    )
    assert again.started_at == EARLIER


def test_completion_stamps_completed_at_and_full_progress_every_time() -> None:
    done = wf.change_status(
        current="in_progress",
        new="completed",
        started_at=EARLIER,
        completed_at=EARLIER,
        progress_percent=40,
        now=NOW,
    )
    assert (done.completed_at, done.progress_percent, done.completes) == (NOW, 100, True)
    reopened = wf.change_status(
        current="completed",
        new="review",
        started_at=EARLIER,
        completed_at=NOW,
        progress_percent=100,
        now=NOW,
    )
    assert reopened.completes is False and reopened.completed_at == NOW


def test_approve_and_reject_only_from_review() -> None:
    approved = wf.approve(current="review", started_at=EARLIER, now=NOW)
    assert (approved.status, approved.progress_percent, approved.completed_at) == (
        "completed",
        100,
        NOW,
    )
    rejected = wf.reject(current="review", started_at=EARLIER, completed_at=None, progress=60)
    assert (rejected.status, rejected.progress_percent) == ("in_progress", 60)
    with pytest.raises(APIError, match="Can only approve tasks in 'review' status"):
        wf.approve(current="in_progress", started_at=None, now=NOW)
    with pytest.raises(APIError, match="Can only reject tasks in 'review' status"):
        wf.reject(current="pending", started_at=None, completed_at=None, progress=0)


@pytest.mark.parametrize("status", [s for s in wf.STATUSES if s != "in_progress"])
def test_progress_only_while_in_progress(status: str) -> None:
    wf.check_progress_allowed("in_progress")
    with pytest.raises(APIError, match="Can only update progress for in_progress tasks"):
        wf.check_progress_allowed(status)


def test_members_change_only_their_own_or_unassigned_tasks() -> None:
    wf.check_may_modify(assignee_id=None, caller_worker_id=1, is_owner=False)
    wf.check_may_modify(assignee_id=1, caller_worker_id=1, is_owner=False)
    wf.check_may_modify(assignee_id=2, caller_worker_id=1, is_owner=True)
    with pytest.raises(APIError) as err:
        wf.check_may_modify(assignee_id=2, caller_worker_id=1, is_owner=False)
    assert err.value.status == 403


def test_assignee_may_not_review_own_work_unless_owner() -> None:
    wf.check_may_review(assignee_id=1, caller_worker_id=1, is_owner=True)
    wf.check_may_review(assignee_id=None, caller_worker_id=1, is_owner=False)
    wf.check_may_review(assignee_id=2, caller_worker_id=1, is_owner=True)
    with pytest.raises(APIError, match="own task"):
        wf.check_may_review(assignee_id=1, caller_worker_id=1, is_owner=False)
    with pytest.raises(APIError, match="assigned to you"):
        wf.check_may_review(assignee_id=2, caller_worker_id=1, is_owner=False)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (datetime(2025, 1, 31, 9, tzinfo=UTC), datetime(2025, 2, 28, 9, tzinfo=UTC)),
        (datetime(2024, 1, 31, 9, tzinfo=UTC), datetime(2024, 2, 29, 9, tzinfo=UTC)),
        (datetime(2025, 3, 15, 9, tzinfo=UTC), datetime(2025, 4, 15, 9, tzinfo=UTC)),
        (datetime(2025, 12, 31, 9, tzinfo=UTC), datetime(2026, 1, 31, 9, tzinfo=UTC)),
        (datetime(2025, 5, 31, 9, tzinfo=UTC), datetime(2025, 6, 30, 9, tzinfo=UTC)),
    ],
)
def test_monthly_is_a_calendar_month_with_day_clamped(start: datetime, expected: datetime) -> None:
    assert recurrence.next_due("monthly", due_date=start, now=NOW) == expected


@pytest.mark.parametrize(
    ("pattern", "delta"),
    [
        ("1m", timedelta(minutes=1)),
        ("5m", timedelta(minutes=5)),
        ("10m", timedelta(minutes=10)),
        ("15m", timedelta(minutes=15)),
        ("30m", timedelta(minutes=30)),
        ("1h", timedelta(hours=1)),
        ("daily", timedelta(days=1)),
        ("weekly", timedelta(days=7)),
    ],
)
def test_fixed_patterns(pattern: str, delta: timedelta) -> None:
    assert recurrence.next_due(pattern, due_date=EARLIER, now=NOW) == EARLIER + delta


def test_undated_task_recurs_from_now() -> None:
    assert recurrence.next_due("daily", due_date=None, now=NOW) == NOW + timedelta(days=1)


def test_catch_up_skips_to_the_future() -> None:
    overdue = NOW - timedelta(hours=5, minutes=30)
    assert recurrence.next_due("1h", due_date=overdue, now=NOW, catch_up=True) == NOW + timedelta(
        minutes=30
    )
    assert recurrence.next_due("1h", due_date=overdue, now=NOW) == overdue + timedelta(hours=1)


def test_unknown_pattern_is_an_error() -> None:
    with pytest.raises(ValueError):
        recurrence.advance("fortnightly", NOW)


def test_max_occurrences_counts_the_whole_series() -> None:
    assert recurrence.series_has_room(max_occurrences=None, tasks_in_series=1000)
    assert recurrence.series_has_room(max_occurrences=3, tasks_in_series=2)
    assert not recurrence.series_has_room(max_occurrences=3, tasks_in_series=3)
    assert not recurrence.series_has_room(max_occurrences=1, tasks_in_series=1)


def test_spawn_on_complete_depends_on_trigger_and_flag() -> None:
    base = dict(is_recurring=True, pattern="daily", has_spawned_next=False)
    assert recurrence.should_spawn_on_complete(trigger="on_complete", **base)  # type: ignore[arg-type]
    assert recurrence.should_spawn_on_complete(trigger="both", **base)  # type: ignore[arg-type]
    assert not recurrence.should_spawn_on_complete(trigger="on_due_date", **base)  # type: ignore[arg-type]
    assert not recurrence.should_spawn_on_complete(
        is_recurring=True, pattern="daily", trigger="on_complete", has_spawned_next=True
    )
    assert not recurrence.should_spawn_on_complete(
        is_recurring=True, pattern=None, trigger="on_complete", has_spawned_next=False
    )


def test_subtask_progress_rollup() -> None:
    assert wf.subtask_progress([]) is None
    assert wf.subtask_progress([0, 50, 100]) == 50
    assert wf.subtask_progress([33, 34]) == 33


def test_reparent_cycles_refused() -> None:
    wf.check_reparent(task_id=1, new_parent_id=2, ancestors_of_new_parent=[3, 4])
    with pytest.raises(APIError, match="Circular reference detected"):
        wf.check_reparent(task_id=1, new_parent_id=1, ancestors_of_new_parent=[])
    with pytest.raises(APIError, match="Circular reference detected"):
        wf.check_reparent(task_id=1, new_parent_id=5, ancestors_of_new_parent=[6, 1, 7])


def test_parent_errors() -> None:
    assert wf.parent_error(parent_project_id=1, project_id=1, parent_id=9) is None
    missing = wf.parent_error(parent_project_id=None, project_id=1, parent_id=9)
    assert missing is not None and missing.message == "Parent task 9 not found"
    other = wf.parent_error(parent_project_id=2, project_id=1, parent_id=9)
    assert other is not None and other.message == "Parent task must be in the same project"
