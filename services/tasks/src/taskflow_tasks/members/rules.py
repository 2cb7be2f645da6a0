"""Rules of project members and member search, free of I/O (unit-tested on their own)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskflow_core.errors import BadRequest

ADD_OWNER_ONLY = "Only project owner can add members"
REMOVE_OWNER_ONLY = "Only project owner can remove members"


def member_target(user_id: str | None, agent_id: int | None) -> tuple[str, str | int]:
    """``("user", id)`` or ``("agent", id)``; empty values count as absent (as the old API)."""
    if not user_id and not agent_id:
        raise BadRequest("Provide either user_id or agent_id")
    if user_id and agent_id:
        raise BadRequest("Provide only one of user_id or agent_id")
    if user_id:
        return ("user", user_id)
    assert agent_id is not None
    return ("agent", agent_id)


def check_member_removable(member: Mapping[str, Any]) -> None:
    if member["role"] == "owner":
        raise BadRequest("Cannot remove project owner")


def search_description(worker_type: str) -> str:
    return "AI Agent" if worker_type == "agent" else "Team Member"
