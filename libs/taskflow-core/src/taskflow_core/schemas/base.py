"""Base schema and fields: bodies refuse unknown keys and loose types; datetimes are UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate


class StrictSchema(Schema):
    """Request bodies: an unknown field is a 422 (no silent mass assignment)."""

    class Meta:
        unknown = RAISE


class QuerySchema(Schema):
    """Query strings: unknown parameters are ignored (old clients send extras)."""

    class Meta:
        unknown = EXCLUDE


class StrictInteger(fields.Integer):
    """A JSON integer only: ``"5"``, ``5.5`` and ``true`` are refused."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._validated(value)


class StrictBoolean(fields.Boolean):
    """A JSON boolean only (``1`` or ``"yes"`` are refused in bodies)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        # ``1 == True`` in Python, so membership in truthy/falsy sets cannot tell them apart.
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class NotBlank(validate.Validator):
    """Refuse strings that are empty or only whitespace."""

    error = "Must not be blank."

    def __call__(self, value: str) -> str:
        if not value.strip():
            raise ValidationError(self.error)
        return value


class UTCDateTime(fields.DateTime):
    """ISO-8601 with an offset, always in UTC (``2025-12-31T00:00:00+00:00``).

    Naive inputs are taken as UTC (the old API sent naive UTC); aware inputs are converted.
    """

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
        return parsed.astimezone(UTC)
