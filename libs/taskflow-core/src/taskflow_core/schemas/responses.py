"""Small response bodies several services share."""

from __future__ import annotations

from marshmallow import Schema, fields


class OkSchema(Schema):
    """``{"ok": true}``: the body of a successful delete (the old API never answered 204)."""

    ok = fields.Boolean(required=True)
