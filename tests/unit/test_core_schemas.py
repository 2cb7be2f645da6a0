"""Shared schema pieces (taskflow_core.schemas) and the project/member/agent shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from marshmallow import ValidationError, fields
from taskflow_core.errors import APIError
from taskflow_core.schemas import (
    PageQuerySchema,
    QuerySchema,
    StrictBoolean,
    StrictInteger,
    StrictSchema,
    UTCDateTime,
    parse_id,
)
from taskflow_core.schemas.base import holds_nul
from taskflow_tasks.members.schemas import MemberCreateSchema
from taskflow_tasks.projects.schemas import ProjectReadSchema, ProjectUpdateSchema
from taskflow_tasks.workers.schemas import AgentCreateSchema


class Sample(StrictSchema):
    n = StrictInteger()
    flag = StrictBoolean()
    when = UTCDateTime()
    text = fields.String()


def test_strict_schema_refuses_unknown_fields_and_loose_types() -> None:
    for bad in ({"other": 1}, {"n": "5"}, {"n": True}, {"n": 1.5}, {"flag": 1}, {"flag": "yes"}):
        with pytest.raises(ValidationError):
            Sample().load(bad)
    assert Sample().load({"n": 5, "flag": False}) == {"n": 5, "flag": False}


def test_utc_datetime_loads_naive_as_utc_and_dumps_with_offset() -> None:
    loaded = Sample().load({"when": "2025-12-31T10:00:00"})["when"]
    assert loaded == datetime(2025, 12, 31, 10, tzinfo=UTC)
    shifted = Sample().load({"when": "2025-12-31T10:00:00+02:00"})["when"]
    assert shifted == datetime(2025, 12, 31, 8, tzinfo=UTC) and shifted.tzinfo == UTC
    local = datetime(2025, 1, 1, 5, tzinfo=timezone(timedelta(hours=5)))
    assert Sample().dump({"when": local})["when"] == "2025-01-01T00:00:00+00:00"


def test_page_query_bounds() -> None:
    assert PageQuerySchema().load({}) == {"limit": 50, "offset": 0}
    assert PageQuerySchema().load({"limit": "100", "offset": "3", "other": "x"}) == {
        "limit": 100,
        "offset": 3,
    }
    for bad in ({"limit": "0"}, {"limit": "101"}, {"limit": "-1"}, {"offset": "-1"}):
        with pytest.raises(ValidationError):
            PageQuerySchema().load(bad)


def test_parse_id() -> None:
    assert parse_id("42", "task_id") == 42
    for bad in ("0", "-1", "abc", "1.5", "99999999999999999999", "", "٣"):
        with pytest.raises(APIError) as err:
            parse_id(bad, "task_id")
        assert err.value.status == 422
        assert err.value.detail[0]["loc"] == ["path", "task_id"]


def test_project_update_absent_null_and_limits() -> None:
    schema = ProjectUpdateSchema()
    assert schema.load({}) == {}
    assert schema.load({"description": None}) == {"description": None}
    for bad in ({"name": ""}, {"name": " "}, {"name": "x" * 201}, {"slug": "a"}):
        with pytest.raises(ValidationError):
            schema.load(bad)


def test_member_and_agent_create() -> None:
    assert MemberCreateSchema().load({"user_id": "u"}) == {"user_id": "u", "agent_id": None}
    agent = AgentCreateSchema().load({"handle": "@a_b-1", "name": "A", "agent_type": "gemini"})
    assert agent["capabilities"] == []
    with pytest.raises(ValidationError):
        AgentCreateSchema().load({"handle": "@A", "name": "A", "agent_type": "gemini"})


def test_project_read_dumps_only_the_reference_fields() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    row = {
        "id": 1, "slug": "s", "name": "N", "description": None, "owner_id": "u",
        "owner_worker_id": 9, "is_default": False, "tenant_id": "t", "member_count": 1,
        "task_count": 0, "created_at": now, "updated_at": now, "caller_role": "owner",
    }  # fmt: skip
    dumped = ProjectReadSchema().dump(row)
    assert "owner_worker_id" not in dumped and "caller_role" not in dumped
    assert dumped["created_at"] == "2025-01-01T00:00:00+00:00"


def test_integral_floats_are_integers_other_loose_numbers_are_not() -> None:
    assert Sample().load({"n": 54.0}) == {"n": 54}
    assert isinstance(Sample().load({"n": -3.0})["n"], int)
    for bad in (54.5, "54", True, float("inf"), float("nan")):
        with pytest.raises(ValidationError):
            Sample().load({"n": bad})


class Nested(StrictSchema):
    items = fields.List(fields.Dict())
    text = fields.String()


class Query(QuerySchema):
    q = fields.String()
    named = fields.String(data_key="named-key")


def test_nul_characters_are_refused_naming_each_field() -> None:
    with pytest.raises(ValidationError) as err:
        Nested().load({"items": [{"k": ["a\x00"]}], "text": "\x00"})
    assert err.value.messages == {
        "items": ["Must not contain NUL characters."],
        "text": ["Must not contain NUL characters."],
    }
    with pytest.raises(ValidationError) as err:
        Nested().load({"items": [{"a\x00": 1}]})
    assert list(err.value.messages) == ["items"]
    assert Nested().load({"text": "no nul here"}) == {"text": "no nul here"}


def test_nul_in_query_strings_only_matters_for_known_parameters() -> None:
    with pytest.raises(ValidationError) as err:
        Query().load({"q": "a\x00b", "named-key": "\x00"})
    assert set(err.value.messages) == {"q", "named-key"}
    assert Query().load({"q": "x", "unknown": "\x00"}) == {"q": "x"}


def test_a_deeply_nested_body_is_checked_without_recursion() -> None:
    deep: list = ["\x00"]
    for _ in range(5000):
        deep = [deep]
    assert holds_nul(deep)
    assert not holds_nul([[[["fine"]]]])
