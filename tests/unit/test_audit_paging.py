"""Audit paging: cursors round-trip, refuse tampering and the other order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from taskflow_audit.paging import (
    InvalidCursor,
    Page,
    Position,
    decode_cursor,
    encode_cursor,
    next_cursor,
)

AT = datetime(2026, 5, 6, 7, 8, 9, 101112, tzinfo=UTC)


def test_cursor_round_trip() -> None:
    cursor = encode_cursor("desc", Position(AT, 77))
    assert decode_cursor(cursor, "desc") == Position(AT, 77)


def test_cursor_for_the_other_order_or_garbage_is_refused() -> None:
    cursor = encode_cursor("asc", Position(AT, 1))
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, "desc")
    for junk in ("", "abc", "!!!", encode_cursor("asc", Position(AT, 1))[:-3]):
        with pytest.raises(InvalidCursor):
            decode_cursor(junk, "asc")


def test_next_cursor_only_for_a_full_page() -> None:
    rows = [{"id": i, "created_at": AT} for i in (5, 4)]
    assert next_cursor(Page(limit=3), rows) is None
    cursor = next_cursor(Page(limit=2), rows)
    assert cursor is not None and decode_cursor(cursor, "desc") == Position(AT, 4)
