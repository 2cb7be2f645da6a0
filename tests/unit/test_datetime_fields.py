"""Every datetime field a service loads, fed any datetime Python can hold (issue 15, finding 2).

The fields are found, not listed: every marshmallow schema of the TaskFlow packages, every
``DateTime`` field it loads. For any instant from ``datetime.min`` to ``datetime.max``, naive or
with any offset, loading gives the same instant in UTC, or a ``ValidationError`` naming the
field when that instant does not exist in UTC (before 0001-01-01 or after 9999-12-31). Never
another exception: that would be a 500.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields

PACKAGES = ("taskflow_core", "taskflow_tasks", "taskflow_audit", "taskflow_auth_verifier")
# Modules that need optional runtime pieces to import and hold no schema.
SKIPPED_MODULES = ("taskflow_tasks.asgi", "taskflow_audit.asgi", "taskflow_auth_verifier.asgi")


def _import_all() -> None:
    for name in PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            if module.name not in SKIPPED_MODULES:
                importlib.import_module(module.name)


def _subclasses(cls: type[Schema]) -> Iterator[type[Schema]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def datetime_fields() -> list[tuple[type[Schema], str, str]]:
    """(schema class, attribute, key in the input) of every loaded DateTime field."""
    _import_all()
    found = set()
    for cls in _subclasses(Schema):
        if not cls.__module__.startswith(PACKAGES):
            continue
        for name, field in cls().load_fields.items():
            if isinstance(field, fields.DateTime):
                found.add((cls, name, field.data_key or name))
    return sorted(found, key=lambda item: (item[0].__module__, item[0].__qualname__, item[1]))


DATETIME_FIELDS = datetime_fields()

# Offsets a client may send: whole minutes strictly inside ±24 h (ISO 8601 and Python agree).
offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
any_datetime = st.datetimes(
    min_value=datetime.min, max_value=datetime.max, timezones=st.none() | offsets
)
EDGES = [
    datetime.min.replace(tzinfo=timezone(timedelta(hours=1))),
    datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))),
    datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
    datetime.min.replace(tzinfo=timezone(timedelta(hours=-1))),
    datetime.max.replace(tzinfo=timezone(timedelta(hours=1))),
    datetime.min,
    datetime.max,
    datetime.min.replace(tzinfo=UTC),
    datetime.max.replace(tzinfo=UTC),
]


def _utc_instant(moment: datetime) -> datetime | None:
    """``moment`` in UTC (naive means UTC), or None when UTC cannot hold it."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None


def test_the_fields_are_found() -> None:
    keys = {(cls.__name__, key) for cls, _name, key in DATETIME_FIELDS}
    assert {
        ("TaskCreateSchema", "due_date"),
        ("TaskUpdateSchema", "due_date"),
        ("SearchQuerySchema", "since"),
        ("SearchQuerySchema", "until"),
        ("AuditEventSchema", "created_at"),
    } <= keys


@pytest.mark.parametrize(
    ("schema_class", "name", "key"),
    DATETIME_FIELDS,
    ids=[f"{cls.__name__}.{key}" for cls, _name, key in DATETIME_FIELDS],
)
@settings(max_examples=150, deadline=None)
@given(moment=any_datetime, spelling=st.sampled_from(["auto", "microseconds", "seconds"]))
@example(moment=EDGES[0], spelling="auto")
@example(moment=EDGES[1], spelling="auto")
@example(moment=EDGES[2], spelling="seconds")
@example(moment=EDGES[3], spelling="auto")
@example(moment=EDGES[4], spelling="auto")
@example(moment=EDGES[5], spelling="auto")
@example(moment=EDGES[6], spelling="microseconds")
@example(moment=EDGES[7], spelling="auto")
@example(moment=EDGES[8], spelling="auto")
def test_any_datetime_loads_as_utc_or_is_refused_by_name(
    schema_class: type[Schema], name: str, key: str, moment: datetime, spelling: str
) -> None:
    text = moment.isoformat(timespec=spelling)
    expected = _utc_instant(moment.replace(microsecond=0) if spelling == "seconds" else moment)
    schema = schema_class()
    try:
        loaded = schema.load({key: text}, partial=True)
    except ValidationError as exc:
        # Only this field may be at fault (partial=True: no other field is required).
        assert expected is None, (text, exc.messages)
        assert set(exc.messages) == {key}, exc.messages
        assert "0001-01-01" in str(exc.messages[key]), exc.messages
        return
    assert expected is not None, f"{text} was accepted but has no UTC instant"
    value = loaded[name]
    assert value == expected and value.utcoffset() == timedelta(0)
