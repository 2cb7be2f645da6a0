"""Rules of projects, free of I/O (unit-tested on their own)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskflow_core.errors import BadRequest

UPDATE_OWNER_ONLY = "Only project owner can update"
DELETE_OWNER_ONLY = "Only project owner can delete"


def check_project_deletable(project: Mapping[str, Any], *, force: bool) -> None:
    """After the owner check, as the old API: Default project (400), tasks without force (400)."""
    if project["is_default"]:
        raise BadRequest("Cannot delete default project")
    if project["task_count"] and not force:
        raise BadRequest(
            f"Project has {project['task_count']} tasks. Delete tasks first or use force=true"
        )
