"""The task route table: every task endpoint, documented for OpenAPI."""

from __future__ import annotations

from taskflow_core.routing import OperationFamily, Route
from taskflow_core.schemas import OkSchema

from ..deps import TasksDeps
from ..recurrence.rules import MAX_OCCURRENCES_MEANING
from ..writes.idempotency import IDEMPOTENCY_HEADER
from ..writes.preconditions import IF_MATCH_HEADER
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

_IF_MATCH = (IF_MATCH_HEADER,)
_IDEMPOTENCY = (IDEMPOTENCY_HEADER,)
_CHANGE_ERRORS = (400, 403, 404, 412)

# The operations: what each says beyond its schemas. Operations answer a list of tasks
# (TaskListItem), one task (TaskRead with its ETag), or a change of one task (If-Match; 412 when
# stale).
_tasks = OperationFamily(TAG, response=TaskListItemSchema, many=True, example=EXAMPLE_LIST_ITEM)
_task = OperationFamily(TAG, response=TaskReadSchema, example=EXAMPLE_TASK)
_change = OperationFamily(
    TAG, response=TaskReadSchema, example=EXAMPLE_TASK, errors=_CHANGE_ERRORS, headers=_IF_MATCH
)
_RECENT = _tasks.get(
    "listRecentTasks",
    "Recent tasks",
    "Newest tasks (subtasks included) of every project of the caller in their tenant; newest "
    "first, id as tiebreaker.",
    query=RecentQuerySchema,
)
_LIST = _tasks.get(
    "listProjectTasks",
    "List project tasks",
    "Filters are ANDed. Every sort ends with id, so paging is stable. search matches the title "
    "case-insensitively with % and _ taken literally; tags=a,b needs every tag.",
    query=TaskListQuerySchema,
    errors=(403, 404),
)
_GET = _task.get(
    "getTask", "Get a task", "With its direct subtasks (by id) and an ETag.", errors=(403, 404)
)
_CREATE = _task.post(
    "createTask",
    "Create a task",
    MAX_OCCURRENCES_MEANING,
    status=201,
    request=TaskCreateSchema,
    errors=(400, 403, 404, 409),
    headers=_IDEMPOTENCY,
    creates="task_id",
)
_SUBTASK = _task.post(
    "createSubtask",
    "Create a subtask",
    status=201,
    request=TaskCreateSchema,
    errors=(400, 403, 404),
    headers=_IDEMPOTENCY,
    creates="task_id",
)
_UPDATE = _change.put(
    "updateTask",
    "Update a task",
    "Absent fields are unchanged; null clears description, due_date, recurrence_pattern, "
    "max_occurrences and parent_task_id. parent_task_id re-parents within the project (cycles: "
    "400 'Circular reference detected'). " + MAX_OCCURRENCES_MEANING,
    request=TaskUpdateSchema,
)
_DELETE = _change.delete(
    "deleteTask",
    "Delete a task",
    "Deletes the task and all its subtasks (one audit event each). Deleting the original of a "
    "recurring series keeps its occurrences: the oldest remaining one becomes the series' "
    "original.",
    response=OkSchema,
    errors=(403, 404, 409, 412),
    example={"ok": True},
)
_STATUS = _change.patch(
    "changeTaskStatus",
    "Change a task's status",
    "Transitions: pending→in_progress|blocked|completed; in_progress→review|completed|blocked; "
    "review→in_progress|completed; completed→review; blocked→pending|in_progress.",
    request=StatusUpdateSchema,
)
_PROGRESS = _change.patch("reportTaskProgress", "Report progress", request=ProgressUpdateSchema)
_ASSIGN = _change.patch("assignTask", "Assign or unassign a task", request=AssignUpdateSchema)
_APPROVE = _change.post(
    "approveTask",
    "Approve a task in review",
    "review→completed. The assignee may not approve their own task unless they own the project.",
    headers=(*_IDEMPOTENCY, *_IF_MATCH),
)
_REJECT = _change.post(
    "rejectTask",
    "Send a task in review back",
    request=RejectSchema,
    headers=(*_IDEMPOTENCY, *_IF_MATCH),
)


def task_routes(deps: TasksDeps) -> list[Route]:
    """Every task endpoint, documented for OpenAPI."""
    return [
        Route("/api/tasks/recent", RecentTasks(deps), (_RECENT,)),
        Route("/api/projects/{project_id}/tasks", ProjectTasks(deps), (_LIST, _CREATE)),
        Route("/api/tasks/{task_id}", TaskItem(deps), (_GET, _UPDATE, _DELETE)),
        Route("/api/tasks/{task_id}/status", TaskStatus(deps), (_STATUS,)),
        Route("/api/tasks/{task_id}/progress", TaskProgress(deps), (_PROGRESS,)),
        Route("/api/tasks/{task_id}/assign", TaskAssignment(deps), (_ASSIGN,)),
        Route("/api/tasks/{task_id}/subtasks", Subtasks(deps), (_SUBTASK,)),
        Route("/api/tasks/{task_id}/approve", TaskApproval(deps), (_APPROVE,)),
        Route("/api/tasks/{task_id}/reject", TaskRejection(deps), (_REJECT,)),
    ]
