"""Loading request input through schemas, with every failure a 422 in the shared error shape."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import falcon
import falcon.asgi
from marshmallow import Schema, ValidationError

from ..errors import is_json_media_type, malformed_json, unsupported_media_type, validation_error

MAX_ID = 2**63 - 1


async def load_body(req: falcon.asgi.Request, schema: Schema) -> dict[str, Any]:
    """Parse the JSON body and load it through ``schema``.

    A body labelled other than ``application/json`` (a form, text) is a 415; a missing body,
    malformed JSON (saying where) or a non-object body is a 422; field problems are a 422
    listing every field (``detail``)."""
    if not is_json_media_type(req.content_type):
        # Falcon would parse a form into {"<the whole body>": ""}: an "unknown field" 422.
        raise unsupported_media_type(req.content_type)
    try:
        media = await req.get_media(default_when_empty=None)
    except falcon.MediaMalformedError as exc:
        raise malformed_json(exc) from exc
    if media is None:
        raise validation_error({"_schema": ["A JSON object body is required."]})
    if not isinstance(media, dict):
        raise validation_error({"_schema": ["The body must be a JSON object."]})
    try:
        loaded: dict[str, Any] = schema.load(media)
    except ValidationError as exc:
        raise validation_error(exc.messages) from exc
    return loaded


# Loaded query strings by (schema, request options, raw query string): a list is asked with the
# same few query strings again and again, and marshmallow took 12 % of a list's CPU loading
# them. Only loads made of immutable values are kept, and each caller gets its own dict.
_LOADED_QUERIES: dict[tuple[Schema, object, str], dict[str, Any]] = {}
MAX_LOADED_QUERIES = 512
_IMMUTABLE = (str, int, float, bool, type(None), datetime.date, datetime.time, Decimal)


def load_query(req: falcon.asgi.Request, schema: Schema) -> dict[str, Any]:
    """Load the query string through ``schema`` (422 with ``loc`` ``["query", name]``)."""
    key = (schema, req.options, req.query_string)
    cached = _LOADED_QUERIES.get(key)
    if cached is not None:
        return dict(cached)
    params: dict[str, Any] = {}
    for name, value in req.params.items():
        # A repeated parameter keeps its last value (one way to read a query string).
        params[name] = value[-1] if isinstance(value, list) else value
    try:
        loaded: dict[str, Any] = schema.load(params)
    except ValidationError as exc:
        raise validation_error(exc.messages, "query") from exc
    if all(isinstance(value, _IMMUTABLE) for value in loaded.values()):
        if len(_LOADED_QUERIES) >= MAX_LOADED_QUERIES:
            _LOADED_QUERIES.clear()
        _LOADED_QUERIES[key] = dict(loaded)
    return loaded


def parse_id(raw: str, name: str) -> int:
    """A path id: a positive integer that fits a bigint, else a 422 naming the parameter."""
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise validation_error({name: ["Must be a positive integer."]}, "path")
    value = int(text)
    if not 1 <= value <= MAX_ID:
        raise validation_error({name: ["Must be a positive integer."]}, "path")
    return value
