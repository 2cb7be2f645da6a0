"""The one pagination style: ``limit`` (1..100, default 50) and ``offset`` (>= 0)."""

from __future__ import annotations

from marshmallow import fields, validate

from .base import QuerySchema

MAX_OFFSET = 1_000_000


class PageQuerySchema(QuerySchema):
    """``?limit=&offset=``; out-of-range values are a 422, never a database error."""

    limit = fields.Integer(
        load_default=50,
        validate=validate.Range(min=1, max=100),
        metadata={"description": "Page size, 1..100"},
    )
    offset = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=MAX_OFFSET),
        metadata={"description": "Rows to skip, >= 0"},
    )
