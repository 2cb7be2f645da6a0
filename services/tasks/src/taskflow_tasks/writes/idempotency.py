"""Idempotency-Key (POST): the first request with a key runs and its response (status, body,
ETag/Location) is stored in the same transaction as the write; a later request from the same
caller with the same key and the same method, path, query and JSON body gets that response
again (``Idempotent-Replayed: true``) and writes nothing; the same key with a different request
is a 422. A failed request stores nothing, so it may be retried with its key. Keys live 24 h.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import falcon
import falcon.asgi
import orjson
import psycopg
from falcon.asgi import Request, Response
from taskflow_core.errors import APIError, malformed_json, validation_error
from taskflow_core.routing import document_header

from ..callers.caller import Caller
from ..deps import TasksDeps
from . import store

Conn = psycopg.AsyncConnection[Any]

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# Printable ASCII, no surrounding spaces (HTTP strips them anyway): the check and its document.
_KEY_PATTERN = r"^[\x21-\x7E](?:[\x20-\x7E]*[\x21-\x7E])?$"
_KEY = re.compile(_KEY_PATTERN)
document_header(
    IDEMPOTENCY_HEADER,
    {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": _KEY_PATTERN,
        "description": "Replays the first response of this caller's POST with the same key "
        "(24 h); the same key with a different request is a 422.",
    },
)
_STORED_HEADERS = ("ETag", "Location")


def request_hash(method: str, path: str, query: str, body: Any) -> str:
    """A fingerprint of the request: method, path, query and canonical JSON body."""
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any
    headers: dict[str, str]

    def write(self, resp: Response) -> None:
        resp.status = self.status
        resp.media = self.body
        for name, value in self.headers.items():
            resp.set_header(name, value)
        resp.set_header(REPLAYED_HEADER, "true")


@dataclass(frozen=True)
class IdempotentRequest:
    """An ``Idempotency-Key`` of one caller's POST, ready to claim inside the write's
    transaction."""

    caller_worker_id: int
    key: str
    method: str
    path: str
    fingerprint: str

    async def claim(self, conn: Conn, now: datetime) -> StoredResponse | None:
        """``None``: this request owns the key and must run (then :meth:`save`). Otherwise
        the first response to replay; 422 when the key was used for a different request."""
        if await store.claim(
            conn,
            caller_worker_id=self.caller_worker_id,
            key=self.key,
            method=self.method,
            path=self.path,
            request_hash=self.fingerprint,
            now=now,
        ):
            return None
        row = await store.stored(conn, self.caller_worker_id, self.key)
        if row is None or row["request_hash"] != self.fingerprint or row["status_code"] is None:
            raise APIError(
                422,
                f"Idempotency-Key '{self.key}' was already used with a different request",
            )
        response = row["response"] or {}
        return StoredResponse(row["status_code"], response.get("body"), response.get("headers", {}))

    async def save(self, conn: Conn, resp: Response) -> None:
        """Store the response the handler produced (call last, inside the transaction)."""
        headers = {
            name: value for name in _STORED_HEADERS if (value := resp.get_header(name)) is not None
        }
        status = resp.status_code
        await store.save_response(
            conn,
            self.caller_worker_id,
            self.key,
            status,
            {"body": resp.media, "headers": headers},
        )


async def idempotent_request(req: Request, caller: Caller) -> IdempotentRequest | None:
    """The request's ``Idempotency-Key`` (``None`` without one; 422 when malformed)."""
    key = req.get_header(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        raise validation_error(
            {IDEMPOTENCY_HEADER: [f"Must be 1..{MAX_KEY_LENGTH} printable ASCII characters."]},
            "header",
        )
    try:
        body = await req.get_media(default_when_empty=None)
    except falcon.MediaMalformedError as exc:
        raise malformed_json(exc) from exc
    return IdempotentRequest(
        caller_worker_id=caller.worker_id,
        key=key,
        method=req.method,
        path=req.path,
        fingerprint=request_hash(req.method, req.path, req.query_string, body),
    )


PostWrite = Callable[[Conn, Caller, datetime], Awaitable[None]]


async def idempotent_post(deps: TasksDeps, req: Request, resp: Response, write: PostWrite) -> None:
    """Run a POST as one transaction honouring ``Idempotency-Key``.

    ``write(conn, caller, now)`` does the change and sets ``resp``; it runs only when the key
    (if any) is new, and its response is stored with the change. A replay answers the stored
    response and writes nothing."""
    async with deps.writing(req) as (conn, caller):
        idem = await idempotent_request(req, caller)
        now = deps.settings.clock()
        if idem is not None and (stored := await idem.claim(conn, now)) is not None:
            stored.write(resp)
            return
        await write(conn, caller, now)
        if idem is not None:
            await idem.save(conn, resp)
