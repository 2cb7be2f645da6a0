"""Reading and validating the Phase I CLI's files (reference §8). Pure: bytes in, data out.

Every problem is collected (not only the first) as a one-line :class:`Problem`, so a user fixes
a file in one pass. Fatal problems stop the import before anything is written; warnings
(``fatal=False``) describe what the import will do about a quirk of the CLI's data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The service's own limits and choices: a row the API would refuse is refused here too.
from taskflow_tasks.projects.schemas import (
    NAME_MAX,
    PROJECT_DESCRIPTION_MAX,
    SLUG_MAX,
    SLUG_PATTERN,
)
from taskflow_tasks.tasks.schemas import DESCRIPTION_MAX, TAGS_MAX, TITLE_MAX
from taskflow_tasks.tasks.workflow import PRIORITIES, STATUSES
from taskflow_tasks.workers.schemas import AGENT_TYPES, HANDLE_MAX, HANDLE_PATTERN

from .checker import Checker, Rows, kind
from .records import (
    CliAuditEntry,
    CliConfig,
    CliData,
    CliProject,
    CliTask,
    CliWorker,
    Problem,
    SourceFiles,
)

WORKER_TYPES = ("human", "agent")
HANDLE_RE = re.compile(HANDLE_PATTERN)
SLUG_RE = re.compile(SLUG_PATTERN)
# What the audit service accepts as an action name (taskflow_audit.events).
ACTION_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def locate(path: Path) -> SourceFiles | Problem:
    """``path`` is a ``.taskflow`` folder, its ``data.json``, or a folder holding ``.taskflow``."""
    if path.is_dir():
        folder = path / ".taskflow" if (path / ".taskflow").is_dir() else path
        data_path = folder / "data.json"
        if not data_path.exists():
            return Problem(str(path), "no data.json here (expected a .taskflow folder)")
    else:
        data_path = path
        if not data_path.exists():
            return Problem(str(path), "no such file or folder")
    try:
        data = data_path.read_bytes()
        config_path = data_path.parent / "config.json"
        config = config_path.read_bytes() if config_path.exists() else None
    except OSError as exc:
        return Problem(str(data_path), f"cannot read: {exc.strerror or exc}")
    return SourceFiles(data_path=data_path, data=data, config=config)


def parse_json(raw: bytes, name: str) -> Any | Problem:
    """The JSON value, or where it stops being JSON (line and column). Empty reads as ``{}``."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Problem(name, f"not UTF-8 text (byte {exc.start})")
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return Problem(name, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")
    except RecursionError:
        return Problem(name, "invalid JSON: nested too deeply")


def _projects(top: dict[str, Any], check: Checker, refused: set[str]) -> Iterator[CliProject]:
    rows = Rows(top, "projects", check)
    for index, obj in rows:
        slug = check.text(obj, "slug", rows.where(index), max_length=SLUG_MAX, pattern=SLUG_RE)
        where = rows.where(index, slug, "slug {}")
        name = check.text(obj, "name", where, max_length=NAME_MAX, non_blank=True)
        description = check.text(
            obj, "description", where, required=False, max_length=PROJECT_DESCRIPTION_MAX
        )
        if not rows.first(slug, index, where, f"project slug {slug!r}"):
            continue
        if slug is not None and name is not None:
            yield CliProject(index, slug, name, description)
        elif isinstance(obj.get("slug"), str):
            refused.add(obj["slug"])


def _workers(top: dict[str, Any], check: Checker, refused: set[str]) -> Iterator[CliWorker]:
    rows = Rows(top, "workers", check)
    for index, obj in rows:
        handle = check.text(obj, "id", rows.where(index), max_length=HANDLE_MAX, pattern=HANDLE_RE)
        where = rows.where(index, handle)
        kind = check.choice(obj, "type", where, WORKER_TYPES, label="worker type")
        name = check.text(obj, "name", where, max_length=NAME_MAX, non_blank=True)
        agent_type = None
        if kind == "agent":
            agent_type = check.choice(obj, "agent_type", where, AGENT_TYPES, label="agent type")
        capabilities = check.strings(obj, "capabilities", where)
        created = check.timestamp(obj, "created_at", where, required=False)
        if not rows.first(handle, index, where, f"worker id {handle}"):
            continue
        if None in (handle, kind, name, capabilities) or (kind == "agent" and agent_type is None):
            if isinstance(obj.get("id"), str):
                refused.add(obj["id"])
            continue
        assert handle is not None and kind is not None and name is not None
        yield (
            CliWorker(
                index,
                handle,
                kind,
                name,
                agent_type,
                capabilities or (),
                created[0] if created else None,
            )
        )


def _tasks(top: dict[str, Any], check: Checker, refused: set[int]) -> Iterator[CliTask]:
    rows = Rows(top, "tasks", check)
    for index, obj in rows:
        task_id = check.integer(obj, "id", rows.where(index), low=1)
        where = rows.where(index, task_id, "id {}")
        title = check.text(obj, "title", where, max_length=TITLE_MAX, non_blank=True)
        description = check.text(
            obj, "description", where, required=False, max_length=DESCRIPTION_MAX
        )
        status = check.choice(obj, "status", where, STATUSES, default="pending")
        priority = check.choice(obj, "priority", where, PRIORITIES, default="medium")
        project_slug = check.text(obj, "project_slug", where)
        created_by = check.text(obj, "created_by", where)
        created = check.timestamp(obj, "created_at", where)
        progress = check.integer(
            {"progress_percent": obj.get("progress_percent", 0)},
            "progress_percent",
            where,
            low=0,
            high=100,
        )
        assigned = check.text(obj, "assigned_to", where, required=False)
        parent_id = check.integer(obj, "parent_id", where, required=False)
        tags = check.strings(obj, "tags", where)
        if tags is not None and len(tags) > TAGS_MAX:
            check.fail(where, f"more than {TAGS_MAX} tags")
            tags = None
        due = check.timestamp(obj, "due_date", where, required=False)
        recurrence = obj.get("recurrence")
        if recurrence is not None and not isinstance(recurrence, str):
            check.fail(where, f"recurrence must be a string, not {kind(recurrence)}")
        updated = check.timestamp(obj, "updated_at", where, required=False)
        if not rows.first(task_id, index, where, f"task id {task_id}"):
            continue
        if (
            task_id is None
            or title is None
            or status is None
            or priority is None
            or project_slug is None
            or created_by is None
            or created is None
            or progress is None
            or tags is None
            or (recurrence is not None and not isinstance(recurrence, str))
        ):
            if task_id is not None:
                refused.add(task_id)
            continue
        yield (
            CliTask(
                index=index,
                id=task_id,
                title=title,
                description=description,
                status=status,
                priority=priority,
                progress_percent=progress,
                project_slug=project_slug,
                assigned_to=assigned,
                parent_id=parent_id,
                tags=tags,
                due_date=due[0] if due else None,
                recurrence=recurrence,
                created_by=created_by,
                created_at=created[0],
                updated_at=updated[0] if updated else created[0],
            )
        )


def _audit(top: dict[str, Any], check: Checker) -> Iterator[CliAuditEntry]:
    # Duplicate audit ids are not a problem: the CLI numbers entries len(logs) + 1, which
    # repeats after a deletion (reference §2.9). Entries are identified by their position.
    rows = Rows(top, "audit_logs", check)
    for index, obj in rows:
        entry_id = check.integer(obj, "id", rows.where(index), required=False)
        where = rows.where(index, entry_id, "id {}")
        task_id = check.integer(obj, "task_id", where, required=False)
        slug = check.text(obj, "project_slug", where, required=False)
        actor = check.text(obj, "actor_id", where)
        actor_type = obj.get("actor_type") or "human"
        if actor_type not in ("human", "agent"):
            check.fail(where, f"unknown actor_type {actor_type!r} (expected human or agent)")
            actor_type = None
        action = check.text(obj, "action", where, max_length=64, pattern=ACTION_RE)
        context = obj.get("context") or {}
        if not isinstance(context, dict):
            check.fail(where, f"context must be an object, not {kind(context)}")
            context = None
        stamp = check.timestamp(obj, "timestamp", where)
        if actor is None or actor_type is None or action is None or context is None:
            continue
        if stamp is None:
            continue
        yield (
            CliAuditEntry(
                index,
                entry_id,
                task_id,
                slug,
                actor,
                str(actor_type),
                action,
                context,
                stamp[0],
                stamp[1],
            )
        )


def _config(raw: bytes | None, problems: list[Problem]) -> CliConfig:
    if raw is None:
        return CliConfig()
    parsed = parse_json(raw, "config.json")
    if isinstance(parsed, Problem):
        problems.append(parsed)
        return CliConfig()
    if not isinstance(parsed, dict):
        problems.append(Problem("config.json", f"must be an object, not {kind(parsed)}"))
        return CliConfig()
    user = parsed.get("current_user")
    default = parsed.get("default_project")
    return CliConfig(
        default_project=default if isinstance(default, str) else None,
        current_user=user if isinstance(user, str) else None,
    )


def read_data(files: SourceFiles) -> tuple[CliData, list[Problem]]:
    """Parse and validate ``data.json`` (and ``config.json``): the data and every problem.

    References between collections (projects, parents, assignees) are checked by the plan."""
    problems: list[Problem] = []
    parsed = parse_json(files.data, files.data_path.name)
    if isinstance(parsed, Problem):
        return CliData(), [parsed]
    if not isinstance(parsed, dict):
        return CliData(), [Problem(files.data_path.name, f"must be an object, not {kind(parsed)}")]
    check = Checker(problems)
    data = CliData(config=_config(files.config, problems))
    data.projects = list(_projects(parsed, check, data.refused_projects))
    data.workers = list(_workers(parsed, check, data.refused_workers))
    data.tasks = list(_tasks(parsed, check, data.refused_tasks))
    data.audit = list(_audit(parsed, check))
    return data, problems
