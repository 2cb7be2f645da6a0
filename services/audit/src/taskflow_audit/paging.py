"""Paging of audit lists: limit/offset as the reference had, plus an opaque keyset cursor.

Every list is ordered by ``(created_at, id)`` (newest first by default, ``order=asc`` for
chronological), so a cursor is simply the position of the last row returned; the next page
continues strictly after it, however many entries were appended in between.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from .chain import canonical_time

Order = Literal["asc", "desc"]
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
_CURSOR_VERSION = "c1"


class InvalidCursor(ValueError):
    """The cursor was not issued by this service for this order."""


@dataclass(frozen=True)
class Position:
    """Where a page ends: the sort key of its last row."""

    created_at: datetime
    id: int


@dataclass(frozen=True)
class Page:
    """Which slice of a list to return."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    order: Order = "desc"
    after: Position | None = None


def encode_cursor(order: Order, position: Position) -> str:
    raw = f"{_CURSOR_VERSION}|{order}|{canonical_time(position.created_at)}|{position.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, order: Order) -> Position:
    """The position in ``cursor``; :class:`InvalidCursor` when it is not one of ours or was
    issued for the other order."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        version, cursor_order, created_at, entry_id = (
            base64.urlsafe_b64decode(padded.encode()).decode().split("|")
        )
        position = Position(datetime.fromisoformat(created_at), int(entry_id))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor("not a valid cursor") from exc
    if version != _CURSOR_VERSION or position.created_at.tzinfo is None:
        raise InvalidCursor("not a valid cursor")
    if cursor_order != order:
        raise InvalidCursor(f"this cursor continues a list in order={cursor_order}")
    return position


def next_cursor(page: Page, rows: list[dict[str, Any]]) -> str | None:
    """The cursor of the page after ``rows``, or None when this page was the last one."""
    if len(rows) < page.limit or not rows:
        return None
    last = rows[-1]
    return encode_cursor(page.order, Position(last["created_at"], int(last["id"])))
