"""schemathesis hooks for the fuzz runs (loaded through SCHEMATHESIS_HOOKS).

The generator reuses small values such as ``Idempotency-Key: 0`` across unrelated requests; the
API then answers, as its contract says, 422 "Idempotency-Key '0' was already used with a
different request". That is the fuzzer colliding with itself, not the server rejecting valid
data, so every well-formed key is made unique per request. Malformed keys are left alone (their
422 is still checked), and replay semantics are tested by the tasks integration tests."""

from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis

# The documented Idempotency-Key (taskflow_tasks.writes.idempotency): 1..255 printable ASCII
# characters, inner spaces allowed, none at either end.
WELL_FORMED_KEY = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$")


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    meta = getattr(case, "meta", None)
    if meta is not None and meta.generation.mode.is_negative:
        # Editing a negative case marks it positive again, which would, for example, put back
        # an Authorization header the "missing header" scenario removed. A 422 is expected
        # there anyway.
        return
    headers = case.headers or {}
    for name, value in list(headers.items()):
        if (
            name.lower() == "idempotency-key"
            and isinstance(value, str)
            and WELL_FORMED_KEY.match(value)
        ):
            headers[name] = f"fuzz-{uuid.uuid4().hex}"
