"""Shared marshmallow pieces: a strict base schema, UTC datetimes, paging, request loading."""

from .base import NotBlank, QuerySchema, StrictBoolean, StrictInteger, StrictSchema, UTCDateTime
from .loading import load_body, load_query, parse_id
from .paging import PageQuerySchema
from .responses import OkSchema

__all__ = [
    "NotBlank",
    "OkSchema",
    "PageQuerySchema",
    "QuerySchema",
    "StrictBoolean",
    "StrictInteger",
    "StrictSchema",
    "UTCDateTime",
    "load_body",
    "load_query",
    "parse_id",
]
