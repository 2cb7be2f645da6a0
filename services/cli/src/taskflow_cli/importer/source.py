"""Reading and validating the Phase I CLI's files (reference §8). Pure: bytes in, data out.

Every problem is collected (not only the first) as a one-line :class:`Problem`, so a user fixes
a file in one pass. Fatal problems stop the import before anything is written; warnings
(``fatal=False``) describe what the import will do about a quirk of the CLI's data.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

STATUSES = ("pending", "in_progress", "review", "completed", "blocked")
PRIORITIES = ("low", "medium", "high", "critical")
WORKER_TYPES = ("human", "agent")
AGENT_TYPES = ("claude", "qwen", "gemini", "custom")
HANDLE_RE = re.compile(r"^@[a-z0-9_-]+$")
SLUG_RE = re.compile(r"^[a-z0-9-]+$")
# What the audit service accepts as an action name (taskflow_audit.events).
ACTION_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# The tasks table's limits (migration 0004): a row the API would refuse is refused here too.
TITLE_MAX = 500
DESCRIPTION_MAX = 20_000
TAGS_MAX = 50
HANDLE_MAX = 50
NAME_MAX = 200
SLUG_MAX = 100
PROJECT_DESCRIPTION_MAX = 2000


@dataclass(frozen=True)
class Problem:
    """One thing wrong (``fatal``) or worth knowing (warning) about the input, on one line."""

    where: str
    message: str
    fatal: bool = True

    def line(self) -> str:
        return f"{'problem' if self.fatal else 'warning'}: {self.where}: {self.message}"


@dataclass(frozen=True)
class CliProject:
    index: int
    slug: str
    name: str
    description: str | None


@dataclass(frozen=True)
class CliWorker:
    index: int
    handle: str
    type: str
    name: str
    agent_type: str | None
    capabilities: tuple[str, ...]
    created_at: datetime | None


@dataclass(frozen=True)
class CliTask:
    index: int
    id: int
    title: str
    description: str | None
    status: str
    priority: str
    progress_percent: int
    project_slug: str
    assigned_to: str | None
    parent_id: int | None
    tags: tuple[str, ...]
    due_date: datetime | None
    recurrence: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CliAuditEntry:
    index: int
    id: int | None
    task_id: int | None
    project_slug: str | None
    actor: str
    actor_type: str
    action: str
    context: dict[str, Any]
    timestamp: datetime
    raw_timestamp: str


@dataclass(frozen=True)
class CliConfig:
    default_project: str | None = None
    current_user: str | None = None


@dataclass
class CliData:
    projects: list[CliProject] = field(default_factory=list)
    workers: list[CliWorker] = field(default_factory=list)
    tasks: list[CliTask] = field(default_factory=list)
    audit: list[CliAuditEntry] = field(default_factory=list)
    config: CliConfig = field(default_factory=CliConfig)
    # Ids / handles / slugs of rows refused for their own problems: references to them are
    # not reported again as dangling.
    refused_tasks: set[int] = field(default_factory=set)
    refused_workers: set[str] = field(default_factory=set)
    refused_projects: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class SourceFiles:
    """The located files: ``data.json``'s bytes (``b""`` when absent) and its fingerprint."""

    data_path: Path
    data: bytes
    config: bytes | None

    @property
    def fingerprint(self) -> str:
        """SHA-256 of data.json: the identity of this import in the ledger and in event ids."""
        return hashlib.sha256(self.data).hexdigest()


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


class _Checker:
    """Field readers that record a problem and return ``None`` instead of raising."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems

    def fail(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message))

    def warn(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message, fatal=False))

    def text(
        self,
        obj: dict[str, Any],
        key: str,
        where: str,
        *,
        required: bool = True,
        max_length: int | None = None,
        pattern: re.Pattern[str] | None = None,
        non_blank: bool = False,
    ) -> str | None:
        if key not in obj or obj[key] is None:
            if required:
                self.fail(where, f"{key} is missing")
            return None
        value = obj[key]
        if not isinstance(value, str):
            self.fail(where, f"{key} must be a string, not {_kind(value)}")
            return None
        if non_blank and not value.strip():
            self.fail(where, f"{key} must not be blank")
            return None
        if max_length is not None and len(value) > max_length:
            self.fail(where, f"{key} is longer than {max_length} characters")
            return None
        if pattern is not None and not pattern.match(value):
            self.fail(where, f"{key} {value!r} does not match {pattern.pattern}")
            return None
        if "\x00" in value:
            self.fail(where, f"{key} contains a NUL character")
            return None
        return value

    def choice(
        self,
        obj: dict[str, Any],
        key: str,
        where: str,
        allowed: tuple[str, ...],
        *,
        default: str | None = None,
        label: str | None = None,
    ) -> str | None:
        value = obj.get(key, default)
        if value is None and default is None:
            self.fail(where, f"{key} is missing")
            return None
        if value not in allowed:
            expected = ", ".join(allowed)
            self.fail(where, f"unknown {label or key} {value!r} (expected one of {expected})")
            return None
        return str(value)

    def integer(
        self,
        obj: dict[str, Any],
        key: str,
        where: str,
        *,
        required: bool = True,
        low: int | None = None,
        high: int | None = None,
    ) -> int | None:
        value = obj.get(key)
        if value is None:
            if required:
                self.fail(where, f"{key} is missing")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, f"{key} must be an integer, not {_kind(value)}")
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            self.fail(where, f"{key} {value} is outside {low}..{high}")
            return None
        return value

    def timestamp(
        self, obj: dict[str, Any], key: str, where: str, *, required: bool = True
    ) -> tuple[datetime, str] | None:
        value = obj.get(key)
        if value is None:
            if required:
                self.fail(where, f"{key} is missing")
            return None
        if not isinstance(value, str):
            self.fail(where, f"{key} must be an ISO date-time string, not {_kind(value)}")
            return None
        parsed = parse_timestamp(value)
        if parsed is None:
            self.fail(where, f"{key} {value!r} is not an ISO date-time")
            return None
        if parsed.isoformat() != value:
            # Read, but not as written (a space for the T from `default=str`, a bare date, ...):
            # say what it was read as, so nobody is surprised by the imported value.
            self.warn(where, f"{key} {value!r} read as {parsed.isoformat()}")
        return parsed, value

    def strings(self, obj: dict[str, Any], key: str, where: str) -> tuple[str, ...] | None:
        value = obj.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(where, f"{key} must be a list of strings")
            return None
        return tuple(value)


def _kind(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "null",
    }.get(type(value), "a value")


def parse_timestamp(value: str) -> datetime | None:
    """An ISO date-time with ``T`` or a space (``default=str``), or a date (midnight)."""
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None


def _collection(top: dict[str, Any], key: str, check: _Checker) -> list[Any]:
    value = top.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        check.fail(key, f"must be a list, not {_kind(value)}")
        return []
    return value


def _objects(items: list[Any], key: str, check: _Checker) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            out.append((index, item))
        else:
            check.fail(f"{key}[{index}]", f"must be an object, not {_kind(item)}")
    return out


def _projects(top: dict[str, Any], check: _Checker, refused: set[str]) -> list[CliProject]:
    result = []
    seen: dict[str, int] = {}
    for index, obj in _objects(_collection(top, "projects", check), "projects", check):
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


def _workers(top: dict[str, Any], check: _Checker, refused: set[str]) -> list[CliWorker]:
    result = []
    seen: dict[str, int] = {}
    for index, obj in _objects(_collection(top, "workers", check), "workers", check):
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


def _tasks(top: dict[str, Any], check: _Checker, refused: set[int]) -> list[CliTask]:
    result = []
    seen: dict[int, int] = {}
    for index, obj in _objects(_collection(top, "tasks", check), "tasks", check):
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
            check.fail(where, f"recurrence must be a string, not {_kind(recurrence)}")
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


def _audit(top: dict[str, Any], check: _Checker) -> list[CliAuditEntry]:
    # Duplicate audit ids are not a problem: the CLI numbers entries len(logs) + 1, which
    # repeats after a deletion (reference §2.9). Entries are identified by their position.
    result = []
    for index, obj in _objects(_collection(top, "audit_logs", check), "audit_logs", check):
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
            check.fail(where, f"context must be an object, not {_kind(context)}")
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
        problems.append(Problem("config.json", f"must be an object, not {_kind(parsed)}"))
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
        return CliData(), [Problem(files.data_path.name, f"must be an object, not {_kind(parsed)}")]
    check = _Checker(problems)
    data = CliData(config=_config(files.config, problems))
    data.projects = _projects(parsed, check, data.refused_projects)
    data.workers = _workers(parsed, check, data.refused_workers)
    data.tasks = _tasks(parsed, check, data.refused_tasks)
    data.audit = _audit(parsed, check)
    return data, problems
