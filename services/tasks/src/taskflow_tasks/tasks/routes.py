"""The task route table: every task endpoint, documented for OpenAPI."""

from __future__ import annotations

from typing import Any

from taskflow_core.routing import Operation, Route
from taskflow_core.schemas import OkSchema

from ..deps import TasksDeps
from ..recurrence.rules import MAX_OCCURRENCES_MEANING
from .actions import TaskApproval, TaskAssignment, TaskProgress, TaskRejection, TaskStatus
from .collection import ProjectTasks, RecentTasks
from .item import TaskItem
from .resource import TAG
from .schemas import (
    EXAMPLE_LIST_ITEM,
    EXAMPLE_TASK,
    AssignUpdateSchema,
    ProgressUpdateSchema,
    RecentQuerySchema,
    RejectSchema,
    StatusUpdateSchema,
    TaskCreateSchema,
    TaskListItemSchema,
    TaskListQuerySchema,
    TaskReadSchema,
    TaskUpdateSchema,
)
from .subtasks import Subtasks

_IF_MATCH = ("If-Match",)
_IDEMPOTENCY = ("Idempotency-Key",)
_CHANGE_ERRORS = (400, 403, 404, 412)


def _op(method: str, summary: str, **kwargs: Any) -> Operation:
    return Operation(method, summary, TAG, **kwargs)


def task_routes(deps: TasksDeps) -> list[Route]:
    """Every task endpoint, documented for OpenAPI."""
    return [
        Route(
            "/api/tasks/recent",
            RecentTasks(deps),
            (
                _op(
                    "GET",
                    "Recent tasks",
                    operation_id="listRecentTasks",
                    response=TaskListItemSchema,
                    many=True,
                    query=RecentQuerySchema,
                    example=EXAMPLE_LIST_ITEM,
                    description="Newest tasks (subtasks included) of every project of the "
                    "caller in their tenant; newest first, id as tiebreaker.",
                ),
            ),
        ),
        Route(
            "/api/projects/{project_id}/tasks",
            ProjectTasks(deps),
            (
                _op(
                    "GET",
                    "List project tasks",
                    operation_id="listProjectTasks",
                    response=TaskListItemSchema,
                    many=True,
                    query=TaskListQuerySchema,
                    errors=(403, 404),
                    example=EXAMPLE_LIST_ITEM,
                    description="Filters are ANDed. Every sort ends with id, so paging is "
                    "stable. search matches the title case-insensitively with % and _ taken "
                    "literally; tags=a,b needs every tag.",
                ),
                _op(
                    "POST",
                    "Create a task",
                    operation_id="createTask",
                    response=TaskReadSchema,
                    status=201,
                    request=TaskCreateSchema,
                    errors=(400, 403, 404, 409),
                    example=EXAMPLE_TASK,
                    headers=_IDEMPOTENCY,
                    description=MAX_OCCURRENCES_MEANING,
                ),
            ),
        ),
        Route(
            "/api/tasks/{task_id}",
            TaskItem(deps),
            (
                _op(
                    "GET",
                    "Get a task",
                    operation_id="getTask",
                    response=TaskReadSchema,
                    errors=(403, 404),
                    example=EXAMPLE_TASK,
                    description="With its direct subtasks (by id) and an ETag.",
                ),
                _op(
                    "PUT",
                    "Update a task",
                    operation_id="updateTask",
                    response=TaskReadSchema,
                    request=TaskUpdateSchema,
                    errors=_CHANGE_ERRORS,
                    example=EXAMPLE_TASK,
                    headers=_IF_MATCH,
                    description="Absent fields are unchanged; null clears description, "
                    "due_date, recurrence_pattern, max_occurrences and parent_task_id. "
                    "parent_task_id re-parents within the project (cycles: 400 'Circular "
                    "reference detected'). " + MAX_OCCURRENCES_MEANING,
                ),
                _op(
                    "DELETE",
                    "Delete a task",
                    operation_id="deleteTask",
                    response=OkSchema,
                    errors=(403, 404, 409, 412),
                    example={"ok": True},
                    headers=_IF_MATCH,
                    description="Deletes the task and all its subtasks (one audit event each). "
                    "Deleting the original of a recurring series keeps its occurrences: the "
                    "oldest remaining one becomes the series' original.",
                ),
            ),
        ),
        Route(
            "/api/tasks/{task_id}/status",
            TaskStatus(deps),
            (
                _op(
                    "PATCH",
                    "Change a task's status",
                    operation_id="changeTaskStatus",
                    response=TaskReadSchema,
                    request=StatusUpdateSchema,
                    errors=_CHANGE_ERRORS,
                    example=EXAMPLE_TASK,
                    headers=_IF_MATCH,
                    description="Transitions: pending→in_progress|blocked|completed; "
                    "in_progress→review|completed|blocked; review→in_progress|completed; "
                    "completed→review; blocked→pending|in_progress.",
                ),
            ),
        ),
        Route(
            "/api/tasks/{task_id}/progress",
            TaskProgress(deps),
            (
                _op(
                    "PATCH",
                    "Report progress",
                    operation_id="reportTaskProgress",
                    response=TaskReadSchema,
                    request=ProgressUpdateSchema,
                    errors=_CHANGE_ERRORS,
                    example=EXAMPLE_TASK,
                    headers=_IF_MATCH,
                ),
            ),
        ),
        Route(
            "/api/tasks/{task_id}/assign",
            TaskAssignment(deps),
            (
                _op(
                    "PATCH",
                    "Assign or unassign a task",
                    operation_id="assignTask",
                    response=TaskReadSchema,
                    request=AssignUpdateSchema,
                    errors=_CHANGE_ERRORS,
                    example=EXAMPLE_TASK,
                    headers=_IF_MATCH,
                ),
            ),
        ),
        Route(
            "/api/tasks/{task_id}/subtasks",
            Subtasks(deps),
            (
                _op(
                    "POST",
                    "Create a subtask",
                    operation_id="createSubtask",
                    response=TaskReadSchema,
                    status=201,
                    request=TaskCreateSchema,
                    errors=(400, 403, 404),
                    example=EXAMPLE_TASK,
                    headers=_IDEMPOTENCY,
                ),
            ),
        ),
        Route(
            "/api/tasks/{task_id}/approve",
            TaskApproval(deps),
            (
                _op(
                    "POST",
                    "Approve a task in review",
                    operation_id="approveTask",
                    response=TaskReadSchema,
                    errors=_CHANGE_ERRORS,
                    example=EXAMPLE_TASK,
                    headers=(*_IDEMPOTENCY, *_IF_MATCH),
                    description="review→completed. The assignee may not approve their own "
                    "task unless they own the project.",
                ),
            ),
        ),
        Route(
            "/api/tasks/{task_id}/reject",
            TaskRejection(deps),
            (
                _op(
                    "POST",
                    "Send a task in review back",
                    operation_id="rejectTask",
                    response=TaskReadSchema,
                    request=RejectSchema,
                    errors=_CHANGE_ERRORS,
                    example=EXAMPLE_TASK,
                    headers=(*_IDEMPOTENCY, *_IF_MATCH),
                ),
            ),
        ),
    ]
