"""Base schema and fields: bodies refuse unknown keys and loose types; datetimes are UTC."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, pre_load, validate

NUL_MESSAGE = "Must not contain NUL characters."


def holds_nul(value: Any) -> bool:
    """Whether a string anywhere in ``value`` (keys included) contains U+0000.

    PostgreSQL ``text`` cannot store NUL, so such input must stop at validation. Walks
    iteratively: a deeply nested body cannot exhaust the recursion limit."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


def refuse_nul(data: Any, keys: Iterable[str] | None = None) -> None:
    """Raise a ``ValidationError`` naming every top-level field of ``data`` whose value holds
    a NUL character (only the fields in ``keys`` when given)."""
    if not isinstance(data, Mapping):
        return
    wanted = None if keys is None else set(keys)
    bad = {
        key: [NUL_MESSAGE]
        for key, value in data.items()
        if (wanted is None or key in wanted) and (holds_nul(key) or holds_nul(value))
    }
    if bad:
        raise ValidationError(bad)


class StrictSchema(Schema):
    """Request bodies: an unknown field is a 422 (no silent mass assignment); a NUL character
    in any string is a 422 naming the field."""

    class Meta:
        unknown = RAISE

    @pre_load
    def _refuse_nul(self, data: Any, **kwargs: Any) -> Any:
        refuse_nul(data)
        return data


class QuerySchema(Schema):
    """Query strings: unknown parameters are ignored (old clients send extras); a NUL
    character in a known parameter is a 422 naming it."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _refuse_nul(self, data: Any, **kwargs: Any) -> Any:
        known = (field.data_key or name for name, field in self.load_fields.items())
        refuse_nul(data, known)
        return data


class StrictInteger(fields.Integer):
    """A JSON integer: ``"5"``, ``5.5`` and ``true`` are refused; an integral float such as
    ``54.0`` is accepted as ``54`` (JSON Schema's ``integer`` admits it)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return super()._validated(value)


class StrictBoolean(fields.Boolean):
    """A JSON boolean only (``1`` or ``"yes"`` are refused in bodies)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        # ``1 == True`` in Python, so membership in truthy/falsy sets cannot tell them apart.
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


# One character that JSON Schema's ECMA-262 ``\s`` does not match, spelled out so that Python
# (whose ``\s`` also matches controls such as U+001C) and the published OpenAPI ``pattern``
# agree on what "blank" means.
NON_BLANK_PATTERN = r"[^\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"


# Every string of a request refuses U+0000 (StrictSchema, QuerySchema); the OpenAPI document
# says so with a ``pattern`` on each string (taskflow_core.openapi). A string that is published
# with a pattern of its own must therefore exclude U+0000 itself:
NUL_FREE_PATTERN = r"^[^\x00]*$"
# "not blank" and "no NUL" in one ECMA-262 / Python pattern (a schema has one ``pattern``).
NON_BLANK_NUL_FREE_PATTERN = r"^[^\x00]*[^\x00" + NON_BLANK_PATTERN[2:] + r"[^\x00]*$"


class NotBlank(validate.Regexp):
    """Refuse strings that are empty or only whitespace (documented as a ``pattern``, which also
    excludes U+0000: that is refused before, by the schema, with its own message)."""

    def __init__(self) -> None:
        super().__init__(NON_BLANK_NUL_FREE_PATTERN, error="Must not be blank.")
        self._non_blank = re.compile(NON_BLANK_PATTERN)

    def __call__(self, value: str) -> str:  # type: ignore[override]
        if self._non_blank.search(value) is None:
            raise ValidationError(self.error)
        return value


# The instants a UTC datetime can hold (Python's and the API's calendar: years 1 to 9999).
DATETIME_RANGE = "0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999Z"
DATETIME_OUT_OF_RANGE = f"Must be between {DATETIME_RANGE.replace(' .. ', ' and ')} in UTC."


class UTCDateTime(fields.DateTime):
    """ISO-8601 with an offset, always in UTC (``2025-12-31T00:00:00+00:00``).

    Naive inputs are taken as UTC (the old API sent naive UTC); aware inputs are converted. An
    input whose UTC instant falls outside years 1..9999 (``0001-01-01T00:00:00+01:00`` is in
    year 0) is a validation error naming the field, not an OverflowError.
    """

    default_error_messages = {"out_of_range": DATETIME_OUT_OF_RANGE}

    def __init__(self, **kwargs: Any) -> None:
        metadata = kwargs.pop("metadata", None) or {}
        metadata.setdefault(
            "description", f"ISO 8601; without an offset it is read as UTC; {DATETIME_RANGE}"
        )
        super().__init__(metadata=metadata, **kwargs)

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return str(value.astimezone(UTC).isoformat())

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        parsed: datetime = super()._deserialize(value, attr, data, **kwargs)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        try:
            return parsed.astimezone(UTC)
        except OverflowError as exc:
            raise self.make_error("out_of_range") from exc
