"""Task domain rules, free of I/O: the status workflow, who may change a task, progress and
the subtask hierarchy (recurrence has its own: ``recurrence.rules``). Resources call these;
stores never do."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from taskflow_core.errors import APIError, BadRequest, Forbidden

STATUSES: Final = ("pending", "in_progress", "review", "completed", "blocked")
PRIORITIES: Final = ("low", "medium", "high", "critical")

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

    def columns(self) -> dict[str, Any]:
        """The task's columns this change writes."""
        return {
            "status": self.status,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "progress_percent": self.progress_percent,
        }


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


# --- subtasks --------------------------------------------------------------------------------


def subtask_progress(children_progress: Iterable[int]) -> int | None:
    """The roll-up a parent shows: the floor of its direct subtasks' average progress, or
    None when it has no subtasks. The parent's own progress_percent is not touched. Reads
    answer it from the count and progress sum kept on the parent (migration 0021, the
    ``subtask_progress`` of ``queries.RESPONSE_ROW``), by this same rule."""
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
