"""Field readers over the CLI's JSON that record a :class:`Problem` and return ``None`` instead of
raising, so every problem of a file is found in one pass."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from .records import Problem


class Checker:
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
            self.fail(where, f"{key} must be a string, not {kind(value)}")
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
            self.fail(where, f"{key} must be an integer, not {kind(value)}")
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
            self.fail(where, f"{key} must be an ISO date-time string, not {kind(value)}")
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


def kind(value: Any) -> str:
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


def collection(top: dict[str, Any], key: str, check: Checker) -> list[Any]:
    value = top.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        check.fail(key, f"must be a list, not {kind(value)}")
        return []
    return value


def objects(items: list[Any], key: str, check: Checker) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            out.append((index, item))
        else:
            check.fail(f"{key}[{index}]", f"must be an object, not {kind(item)}")
    return out


class Rows:
    """The objects of one collection of ``data.json`` (``projects``, ``tasks``, ...), each with
    its index, and the keys seen among them: a second row with the same key is a problem, the
    first one stays."""

    def __init__(self, top: dict[str, Any], name: str, check: Checker) -> None:
        self.name = name
        self.check = check
        self.seen: dict[Any, int] = {}
        self.items = objects(collection(top, name, check), name, check)

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        return iter(self.items)

    def where(self, index: int, key: object = None, label: str = "{}") -> str:
        """``tasks[3]``, or ``tasks[3] (id 7)`` once the row's key is known (``label`` spells
        it)."""
        return f"{self.name}[{index}]" + ("" if key is None else f" ({label.format(key)})")

    def first(self, key: Any, index: int, where: str, what: str) -> bool:
        """Whether row ``index`` is the first with ``key`` (a row without one passes)."""
        if key is None:
            return True
        if key in self.seen:
            self.check.fail(where, f"duplicate {what} (also {self.name}[{self.seen[key]}])")
            return False
        self.seen[key] = index
        return True
