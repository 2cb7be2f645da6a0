"""Task request and response shapes.

Requests are loaded through marshmallow schemas built once at import (unknown fields → 422).
Responses are built as plain dicts by :func:`task_read` and :func:`task_list_item` (the hot
path; marshmallow's dump is several times slower); the read schemas below document the same
shapes in OpenAPI, and a unit test keeps the two in step. Timestamps stay ``datetime``: the
services' orjson renders them exactly as ``isoformat()`` would, several times faster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from marshmallow import ValidationError, fields, post_load, validate, validates_schema
from taskflow_core.schemas import (
    NotBlank,
    PageQuerySchema,
    QuerySchema,
    StrictBoolean,
    StrictInteger,
    StrictSchema,
    UTCDateTime,
)

from ..recurrence.rules import (
    MAX_OCCURRENCES_MEANING,
    RECURRENCE_PATTERN_MEANING,
    RECURRENCE_PATTERNS,
    RECURRENCE_TRIGGERS,
    SERIES_END_MEANING,
)
from .workflow import PRIORITIES, STATUSES

TITLE_MAX = 500
DESCRIPTION_MAX = 20000
TAG_MAX = 100
TAGS_MAX = 50
NOTE_MAX = 500
SEARCH_MAX = 200
RECURRING_NEEDS_PATTERN = "Value error, recurrence_pattern required when is_recurring is True"


def _title(*, required: bool, allow_none: bool = False) -> fields.String:
    return fields.String(
        required=required,
        allow_none=allow_none,
        validate=[validate.Length(min=1, max=TITLE_MAX), NotBlank()],
        metadata={"description": "1..500 characters, not blank"},
    )


def _tags(*, allow_none: bool = False) -> fields.List:
    return fields.List(
        fields.String(validate=[validate.Length(min=1, max=TAG_MAX), NotBlank()]),
        allow_none=allow_none,
        validate=validate.Length(max=TAGS_MAX),
        metadata={"description": "Up to 50 tags, each 1..100 characters"},
    )


def _optional_id(description: str) -> StrictInteger:
    return StrictInteger(
        allow_none=True,
        validate=validate.Range(min=0, max=2**63 - 1),
        metadata={"description": description},
    )


_MAX_OCCURRENCES_DOC = {"description": MAX_OCCURRENCES_MEANING}
_RECURRENCE_PATTERN_DOC = {"description": f"{RECURRENCE_PATTERN_MEANING} {SERIES_END_MEANING}"}


class TaskCreateSchema(StrictSchema):
    """Body of ``POST /api/projects/{pid}/tasks`` and ``POST /api/tasks/{id}/subtasks``."""

    # The cross-field rule of _recurring_needs_pattern, published in the OpenAPI component.
    openapi_extra: ClassVar[dict[str, Any]] = {
        "if": {"properties": {"is_recurring": {"const": True}}, "required": ["is_recurring"]},
        "then": {
            "required": ["recurrence_pattern"],
            "properties": {"recurrence_pattern": {"type": "string"}},
        },
    }

    # A new top-level task, nobody assigned (ids would have to name this project's members).
    openapi_example: ClassVar[dict[str, Any]] = {
        "title": "Write the release notes",
        "description": "Cover the API changes and the upgrade steps",
        "priority": "high",
        "tags": ["docs", "release"],
        "due_date": "2027-06-30T17:00:00+00:00",
    }

    title = _title(required=True)
    description = fields.String(
        allow_none=True, validate=validate.Length(max=DESCRIPTION_MAX), load_default=None
    )
    priority = fields.String(validate=validate.OneOf(PRIORITIES), load_default="medium")
    assignee_id = _optional_id("Worker to assign (a project member); 0 or null: nobody")
    parent_task_id = _optional_id("Parent task in the same project; 0 or null: top level")
    tags = _tags()
    due_date = UTCDateTime(allow_none=True, load_default=None)
    is_recurring = StrictBoolean(load_default=False)
    recurrence_pattern = fields.String(
        allow_none=True,
        validate=validate.OneOf(RECURRENCE_PATTERNS),
        load_default=None,
        metadata=_RECURRENCE_PATTERN_DOC,
    )
    max_occurrences = StrictInteger(
        allow_none=True,
        validate=validate.Range(min=1, max=1_000_000),
        load_default=None,
        metadata=_MAX_OCCURRENCES_DOC,
    )
    recurrence_trigger = fields.String(
        validate=validate.OneOf(RECURRENCE_TRIGGERS), load_default="on_complete"
    )
    clone_subtasks_on_recur = StrictBoolean(load_default=False)

    @validates_schema
    def _recurring_needs_pattern(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("is_recurring") and not data.get("recurrence_pattern"):
            raise ValidationError(RECURRING_NEEDS_PATTERN, "recurrence_pattern")

    @post_load
    def _normalise(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # The old API treated 0 as "none" for these ids, and a pattern as "recurring".
        for key in ("assignee_id", "parent_task_id"):
            if not data.get(key):
                data[key] = None
        if data.get("recurrence_pattern"):
            data["is_recurring"] = True
        data.setdefault("tags", [])
        return data


class TaskUpdateSchema(StrictSchema):
    """Body of ``PUT /api/tasks/{id}``: an absent field is unchanged. ``null`` clears
    ``description``, ``due_date``, ``recurrence_pattern``, ``max_occurrences`` and
    ``parent_task_id`` (back to top level); for the other fields ``null`` means unchanged, as
    the old API did."""

    # A body turning recurrence on cannot clear the pattern at the same time (422); turning it on
    # for a task that has no pattern, without giving one, is a 400 (it depends on the task).
    openapi_extra: ClassVar[dict[str, Any]] = {
        "if": {"properties": {"is_recurring": {"const": True}}, "required": ["is_recurring"]},
        "then": {"properties": {"recurrence_pattern": {"type": "string"}}},
    }

    openapi_example: ClassVar[dict[str, Any]] = {
        "title": "Write the release notes for 2.0",
        "priority": "critical",
        "tags": ["docs", "release", "2.0"],
    }

    title = _title(required=False, allow_none=True)
    description = fields.String(allow_none=True, validate=validate.Length(max=DESCRIPTION_MAX))
    priority = fields.String(allow_none=True, validate=validate.OneOf(PRIORITIES))
    tags = _tags(allow_none=True)
    due_date = UTCDateTime(allow_none=True)
    is_recurring = StrictBoolean(allow_none=True)
    recurrence_pattern = fields.String(
        allow_none=True,
        validate=validate.OneOf(RECURRENCE_PATTERNS),
        metadata=_RECURRENCE_PATTERN_DOC,
    )
    max_occurrences = StrictInteger(
        allow_none=True,
        validate=validate.Range(min=1, max=1_000_000),
        metadata=_MAX_OCCURRENCES_DOC,
    )
    recurrence_trigger = fields.String(
        allow_none=True, validate=validate.OneOf(RECURRENCE_TRIGGERS)
    )
    clone_subtasks_on_recur = StrictBoolean(allow_none=True)
    parent_task_id = _optional_id("New parent in the same project; null or 0: top level")

    @post_load
    def _drop_unchanged(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        clearable = {"description", "due_date", "recurrence_pattern", "max_occurrences"}
        out = {k: v for k, v in data.items() if v is not None or k in clearable}
        if "parent_task_id" in data:
            out["parent_task_id"] = data["parent_task_id"] or None
        return out


class StatusUpdateSchema(StrictSchema):
    openapi_example: ClassVar[dict[str, Any]] = {"status": "in_progress"}

    status = fields.String(required=True, validate=validate.OneOf(STATUSES))


class ProgressUpdateSchema(StrictSchema):
    openapi_example: ClassVar[dict[str, Any]] = {"percent": 40, "note": "API section drafted"}

    percent = StrictInteger(required=True, validate=validate.Range(min=0, max=100))
    note = fields.String(allow_none=True, validate=validate.Length(max=NOTE_MAX), load_default=None)


class AssignUpdateSchema(StrictSchema):
    """Body of ``PATCH /api/tasks/{id}/assign``. Unlike TaskCreate, 0 is an id like any other
    (the reference answers 400 for it); ``null`` is the one way to unassign."""

    openapi_example: ClassVar[dict[str, Any]] = {"assignee_id": 12}

    assignee_id = StrictInteger(
        required=True,
        allow_none=True,
        validate=validate.Range(min=0, max=2**63 - 1),
        metadata={
            "description": "A project member's worker id. null unassigns the task. Any other "
            "id, 0 included, must be a member of the project, else 400 "
            '"Worker {id} is not a member of this project".'
        },
    )


class RejectSchema(StrictSchema):
    openapi_example: ClassVar[dict[str, Any]] = {
        "reason": "The upgrade steps are missing; please add them"
    }

    reason = fields.String(required=True, validate=validate.Length(max=NOTE_MAX))


class TaskListQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    assignee_id = fields.Integer(validate=validate.Range(min=0, max=2**63 - 1))
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    search = fields.String(
        validate=validate.Length(max=SEARCH_MAX),
        metadata={"description": "Case-insensitive title substring; % and _ match literally"},
    )
    tags = fields.String(
        validate=validate.Length(max=2000),
        metadata={"description": "Comma-separated; a task must carry every tag (exact match)"},
    )
    has_due_date = fields.Boolean()
    sort_by = fields.String(
        validate=validate.OneOf(("created_at", "due_date", "priority", "title")),
        load_default="created_at",
    )
    sort_order = fields.String(validate=validate.OneOf(("asc", "desc")), load_default="desc")


class RecentQuerySchema(QuerySchema):
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=50))


# --- responses -------------------------------------------------------------------------------


class _TaskCoreSchema(StrictSchema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    description = fields.String(allow_none=True)
    status = fields.String(validate=validate.OneOf(STATUSES))
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    progress_percent = fields.Integer()
    tags = fields.List(fields.String())
    due_date = UTCDateTime(allow_none=True)
    is_recurring = fields.Boolean()
    project_id = fields.Integer()
    assignee_id = fields.Integer(allow_none=True)
    assignee_handle = fields.String(allow_none=True)
    parent_task_id = fields.Integer(allow_none=True)
    subtask_count = fields.Integer(metadata={"description": "Direct subtasks"})
    subtask_progress = fields.Integer(
        allow_none=True,
        metadata={
            "description": "Floor of the average progress of the direct subtasks; null "
            "without subtasks. The task's own progress_percent is independent of it."
        },
    )
    spawn_count = fields.Integer(
        metadata={"description": "Occurrences spawned in this task's recurring series"}
    )
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


class TaskListItemSchema(_TaskCoreSchema):
    """A task in a list (the reference's TaskListItem plus tags, description, roll-up)."""


class TaskSubtaskSchema(_TaskCoreSchema):
    recurrence_pattern = fields.String(allow_none=True)
    max_occurrences = fields.Integer(allow_none=True, metadata=_MAX_OCCURRENCES_DOC)
    recurring_root_id = fields.Integer(allow_none=True)
    recurrence_trigger = fields.String()
    clone_subtasks_on_recur = fields.Boolean()
    has_spawned_next = fields.Boolean()
    created_by_id = fields.Integer()
    started_at = UTCDateTime(allow_none=True)
    completed_at = UTCDateTime(allow_none=True)
    subtasks = fields.List(fields.Dict(), metadata={"description": "Always empty at this depth"})


class TaskReadSchema(TaskSubtaskSchema):
    """A full task; ``GET /api/tasks/{id}`` fills ``subtasks`` one level deep (by id)."""

    subtasks = fields.List(fields.Nested(TaskSubtaskSchema))


def task_list_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """The TaskListItem of a task row (see TaskListItemSchema)."""
    return {
        "id": row["id"],
        "title": row["title"],
        "description": row["description"],
        "status": row["status"],
        "priority": row["priority"],
        "progress_percent": row["progress_percent"],
        "tags": row["tags"],
        "due_date": row["due_date"],
        "is_recurring": row["is_recurring"],
        "project_id": row["project_id"],
        "assignee_id": row["assignee_id"],
        "assignee_handle": row["assignee_handle"],
        "parent_task_id": row["parent_task_id"],
        "subtask_count": row["subtask_count"],
        "subtask_progress": row["subtask_progress"],
        "spawn_count": row["spawn_count"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def task_read(row: Mapping[str, Any], subtasks: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The TaskRead of a task row, with its direct subtasks' rows (see TaskReadSchema)."""
    out = task_list_item(row)
    out.update(
        recurrence_pattern=row["recurrence_pattern"],
        max_occurrences=row["max_occurrences"],
        recurring_root_id=row["recurring_root_id"],
        recurrence_trigger=row["recurrence_trigger"],
        clone_subtasks_on_recur=row["clone_subtasks_on_recur"],
        has_spawned_next=row["has_spawned_next"],
        created_by_id=row["created_by_id"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        subtasks=[task_read(child) for child in subtasks],
    )
    return out


TASK_CREATE = TaskCreateSchema()
TASK_UPDATE = TaskUpdateSchema()
STATUS_UPDATE = StatusUpdateSchema()
PROGRESS_UPDATE = ProgressUpdateSchema()
ASSIGN_UPDATE = AssignUpdateSchema()
REJECT = RejectSchema()
TASK_LIST_QUERY = TaskListQuerySchema()
RECENT_QUERY = RecentQuerySchema()

EXAMPLE_TASK: dict[str, Any] = {
    "id": 42,
    "title": "Write the release notes",
    "description": "Cover the API changes",
    "status": "in_progress",
    "priority": "high",
    "progress_percent": 40,
    "tags": ["docs", "release"],
    "due_date": "2025-12-31T17:00:00+00:00",
    "is_recurring": False,
    "project_id": 7,
    "assignee_id": 3,
    "assignee_handle": "@alice",
    "parent_task_id": None,
    "subtask_count": 2,
    "subtask_progress": 50,
    "spawn_count": 0,
    "created_at": "2025-12-01T09:00:00+00:00",
    "updated_at": "2025-12-02T10:30:00+00:00",
    "recurrence_pattern": None,
    "max_occurrences": None,
    "recurring_root_id": None,
    "recurrence_trigger": "on_complete",
    "clone_subtasks_on_recur": False,
    "has_spawned_next": False,
    "created_by_id": 3,
    "started_at": "2025-12-02T08:00:00+00:00",
    "completed_at": None,
    "subtasks": [],
}
EXAMPLE_LIST_ITEM = {k: EXAMPLE_TASK[k] for k in TaskListItemSchema().fields}
