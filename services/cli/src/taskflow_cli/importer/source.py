"""Reading and validating the Phase I CLI's files (reference §8). Pure: bytes in, data out.

Every problem is collected (not only the first) as a one-line :class:`Problem`, so a user fixes
a file in one pass. Fatal problems stop the import before anything is written; warnings
(``fatal=False``) describe what the import will do about a quirk of the CLI's data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

# The service's own limits and choices: a row the API would refuse is refused here too.
from taskflow_tasks.projects.schemas import NAME_MAX, PROJECT_DESCRIPTION_MAX, SLUG_MAX
from taskflow_tasks.tasks.schemas import DESCRIPTION_MAX, TAGS_MAX, TITLE_MAX
from taskflow_tasks.tasks.workflow import PRIORITIES, STATUSES
from taskflow_tasks.workers.schemas import AGENT_TYPES, HANDLE_MAX

from .checker import Checker, collection, kind, objects
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
HANDLE_RE = re.compile(r"^@[a-z0-9_-]+$")
SLUG_RE = re.compile(r"^[a-z0-9-]+$")
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


def _projects(top: dict[str, Any], check: Checker, refused: set[str]) -> list[CliProject]:
    result = []
    seen: dict[str, int] = {}
    for index, obj in objects(collection(top, "projects", check), "projects", check):
        where = f"projects[{index}]"
        slug = check.text(obj, "slug", where, max_length=SLUG_MAX, pattern=SLUG_RE)
        if slug is not None:
            where = f"projects[{index}] (slug {slug})"
        name = check.text(obj, "name", where, max_length=NAME_MAX, non_blank=True)
        description = check.text(
            obj, "description", where, required=False, max_length=PROJECT_DESCRIPTION_MAX
        )
        if slug is not None and slug in seen:
            check.fail(where, f"duplicate project slug {slug!r} (also projects[{seen[slug]}])")
            continue
        if slug is not None:
            seen[slug] = index
        if slug is not None and name is not None:
            result.append(CliProject(index, slug, name, description))
        elif isinstance(obj.get("slug"), str):
            refused.add(obj["slug"])
    return result


def _workers(top: dict[str, Any], check: Checker, refused: set[str]) -> list[CliWorker]:
    result = []
    seen: dict[str, int] = {}
    for index, obj in objects(collection(top, "workers", check), "workers", check):
        where = f"workers[{index}]"
        handle = check.text(obj, "id", where, max_length=HANDLE_MAX, pattern=HANDLE_RE)
        if handle is not None:
            where = f"workers[{index}] ({handle})"
        kind = check.choice(obj, "type", where, WORKER_TYPES, label="worker type")
        name = check.text(obj, "name", where, max_length=NAME_MAX, non_blank=True)
        agent_type = None
        if kind == "agent":
            agent_type = check.choice(obj, "agent_type", where, AGENT_TYPES, label="agent type")
        capabilities = check.strings(obj, "capabilities", where)
        created = check.timestamp(obj, "created_at", where, required=False)
        if handle is not None and handle in seen:
            check.fail(where, f"duplicate worker id {handle} (also workers[{seen[handle]}])")
            continue
        if handle is not None:
            seen[handle] = index
        if None in (handle, kind, name, capabilities) or (kind == "agent" and agent_type is None):
            if isinstance(obj.get("id"), str):
                refused.add(obj["id"])
            continue
        assert handle is not None and kind is not None and name is not None
        result.append(
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
    return result


def _tasks(top: dict[str, Any], check: Checker, refused: set[int]) -> list[CliTask]:
    result = []
    seen: dict[int, int] = {}
    for index, obj in objects(collection(top, "tasks", check), "tasks", check):
        where = f"tasks[{index}]"
        task_id = check.integer(obj, "id", where, low=1)
        if task_id is not None:
            where = f"tasks[{index}] (id {task_id})"
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
        if task_id is not None and task_id in seen:
            check.fail(where, f"duplicate task id {task_id} (also tasks[{seen[task_id]}])")
            continue
        if task_id is not None:
            seen[task_id] = index
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
        result.append(
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
    return result


def _audit(top: dict[str, Any], check: Checker) -> list[CliAuditEntry]:
    # Duplicate audit ids are not a problem: the CLI numbers entries len(logs) + 1, which
    # repeats after a deletion (reference §2.9). Entries are identified by their position.
    result = []
    for index, obj in objects(collection(top, "audit_logs", check), "audit_logs", check):
        where = f"audit_logs[{index}]"
        entry_id = check.integer(obj, "id", where, required=False)
        if entry_id is not None:
            where = f"audit_logs[{index}] (id {entry_id})"
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
        result.append(
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
    return result


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
    data.projects = _projects(parsed, check, data.refused_projects)
    data.workers = _workers(parsed, check, data.refused_workers)
    data.tasks = _tasks(parsed, check, data.refused_tasks)
    data.audit = _audit(parsed, check)
    return data, problems
