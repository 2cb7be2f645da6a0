"""ETag / If-Match: optimistic concurrency for writes.

A strong tag from the entity kind, id and ``updated_at`` (microseconds), so it changes whenever
the resource's own fields change. Counts shown beside them (member_count, task_count,
subtask_count) are not part of it. If-Match compares weakly (a ``W/`` prefix is ignored) so a
client may send back what it was given; ``*`` matches any existing resource; no If-Match keeps
last-write-wins for old clients. Check it after locking the row (``FOR UPDATE``) in the write's
transaction, so two writers with the same tag cannot both pass.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from falcon.asgi import Request
from taskflow_core.errors import APIError

IF_MATCH_HEADER = "If-Match"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def etag(kind: str, entity_id: int, updated_at: datetime) -> str:
    """A strong ETag, e.g. ``"project-7-1733000000123456"``."""
    if updated_at.tzinfo is None:
        updated_at = updated_at.replace(tzinfo=UTC)
    micros = (updated_at - _EPOCH) // timedelta(microseconds=1)
    return f'"{kind}-{entity_id}-{micros}"'


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def if_match_satisfied(if_match: str | None, current: str) -> bool:
    """Whether an ``If-Match`` header value lets a write on ``current`` proceed."""
    if if_match is None or not if_match.strip():
        return True
    candidates = [part for part in if_match.split(",") if part.strip()]
    return any(c.strip() == "*" or _opaque(c) == _opaque(current) for c in candidates)


def check_if_match(req: Request, current: str) -> None:
    """412 when the request's ``If-Match`` names a version other than ``current``."""
    if not if_match_satisfied(req.get_header(IF_MATCH_HEADER), current):
        raise APIError(
            412,
            "Precondition failed: the resource was changed by someone else; "
            "fetch it again and retry",
            headers={"ETag": current},
        )
