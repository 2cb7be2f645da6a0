"""What an update request changes, field by field (pure): the columns to write and the
``{field: {"before", "after"}}`` details its audit event records."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any


def field_changes(
    current: Mapping[str, Any], requested: Mapping[str, Any], *, nullable: Collection[str] = ()
) -> dict[str, dict[str, Any]]:
    """``{field: {"before", "after"}}`` for each requested field whose value differs.

    A field absent from ``requested`` is unchanged. ``null`` clears a field listed in
    ``nullable`` and means "unchanged" for the others (what old clients send)."""
    changes: dict[str, dict[str, Any]] = {}
    for name, value in requested.items():
        if value is None and name not in nullable:
            continue
        if current.get(name) != value:
            changes[name] = {"before": current.get(name), "after": value}
    return changes
