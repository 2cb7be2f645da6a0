"""The CLI wrote naive local times (``datetime.now()``); these turn them into UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

_OFFSET_RE = re.compile(r"^(?:UTC)?([+-])(\d{1,2})(?::?(\d{2}))?$|^(?:UTC|Z)$", re.IGNORECASE)


def parse_offset(text: str) -> timezone:
    """``+02:00``, ``-0530``, ``+2``, ``UTC``, ``Z`` → a fixed offset; ``ValueError`` otherwise."""
    match = _OFFSET_RE.match(text.strip())
    if match is None:
        raise ValueError(f"not a UTC offset: {text!r} (expected e.g. +02:00 or -05:30)")
    if match.group(1) is None:
        return UTC
    hours, minutes = int(match.group(2)), int(match.group(3) or 0)
    if hours > 14 or minutes > 59:
        raise ValueError(f"not a UTC offset: {text!r}")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if match.group(1) == "-" else delta)


def format_offset(delta: timedelta | None) -> str:
    total = int((delta or timedelta()).total_seconds()) // 60
    sign = "-" if total < 0 else "+"
    hours, minutes = divmod(abs(total), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


class LocalTime:
    """Converts naive local times to UTC with a fixed offset (``--utc-offset``) or, without one,
    the zone rules of this machine (DST included), and remembers the offsets it used."""

    def __init__(self, fixed: timezone | None = None, zone: tzinfo | None = None) -> None:
        self.fixed = fixed
        self.zone = zone
        self.offsets_used: set[str] = set()

    def offset_of(self, naive: datetime) -> timedelta:
        if naive.tzinfo is not None:
            return naive.utcoffset() or timedelta()
        if self.fixed is not None:
            return self.fixed.utcoffset(None)
        if self.zone is not None:
            return naive.replace(tzinfo=self.zone).utcoffset() or timedelta()
        return naive.astimezone().utcoffset() or timedelta()

    def to_utc(self, value: datetime) -> datetime:
        """``value`` in UTC; a value that already carries an offset keeps its own."""
        if value.tzinfo is not None:
            return value.astimezone(UTC)
        offset = self.offset_of(value)
        self.offsets_used.add(format_offset(offset))
        return (value - offset).replace(tzinfo=UTC)

    def describe(self) -> str:
        """The sentence the report prints about how local times were read."""
        used = ", ".join(sorted(self.offsets_used)) or "none needed"
        if self.fixed is not None:
            fixed = format_offset(self.fixed.utcoffset(None))
            return f"local times read as UTC{fixed} (--utc-offset)"
        name = (
            str(self.zone)
            if self.zone is not None
            else (datetime.now().astimezone().tzname() or "local")
        )
        return f"local times read in this machine's zone {name} (offsets used: {used})"
