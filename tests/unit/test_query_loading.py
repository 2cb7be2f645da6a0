"""Query strings are loaded once per distinct string and schema (lists ask the same ones again
and again), but every request still gets its own answer: a caller changing what it got does not
change what the next request gets, and an invalid query string is a 422 every time."""

from __future__ import annotations

import falcon.testing
import pytest
from marshmallow import Schema, fields, validate
from taskflow_core.errors import APIError
from taskflow_core.schemas import load_query


class PageQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
    sort_by = fields.String(load_default="created_at")
    tags = fields.String()


SCHEMA = PageQuery()


def load(query_string: str) -> dict:
    return load_query(falcon.testing.create_asgi_req(query_string=query_string), SCHEMA)


def test_each_request_gets_its_own_loaded_query() -> None:
    first = load("limit=20&tags=a,b")
    assert first == {"limit": 20, "sort_by": "created_at", "tags": "a,b"}
    first["limit"] = 99
    first.pop("tags")
    assert load("limit=20&tags=a,b") == {"limit": 20, "sort_by": "created_at", "tags": "a,b"}
    assert load("limit=21") == {"limit": 21, "sort_by": "created_at"}


def test_an_invalid_query_is_refused_every_time() -> None:
    for _ in range(3):
        with pytest.raises(APIError) as refused:
            load("limit=500")
        assert refused.value.status == 422
