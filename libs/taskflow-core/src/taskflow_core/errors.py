"""One error shape for every service.

``{"error": msg, "detail": msg-or-field-errors, "status_code": n}`` (what the old web client and
MCP client read) plus the RFC 9457 members ``type``, ``title`` and ``status``.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import falcon
import falcon.asgi
import structlog
from marshmallow import ValidationError

log = structlog.get_logger("taskflow.errors")


class APIError(Exception):
    """A domain or HTTP error that maps onto the JSON error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = message if detail is None else detail
        self.headers = headers or {}


class NotFound(APIError):
    def __init__(self, message: str = "Not found") -> None:
        super().__init__(404, message)


class Forbidden(APIError):
    def __init__(self, message: str) -> None:
        super().__init__(403, message)


class BadRequest(APIError):
    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class Conflict(APIError):
    def __init__(self, message: str) -> None:
        super().__init__(409, message)


class Unauthorized(APIError):
    def __init__(self, message: str = "Not authenticated", *, error: str | None = None) -> None:
        challenge = 'Bearer realm="taskflow"'
        if error:
            challenge += f', error="{error}"'
        super().__init__(401, message, headers={"WWW-Authenticate": challenge})


class ServiceUnavailable(APIError):
    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(503, message, headers={"Retry-After": str(retry_after)})


def error_body(status: int, message: str, detail: Any = None) -> dict[str, Any]:
    """The JSON error document for ``status``."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return {
        "error": message,
        "detail": message if detail is None else detail,
        "status_code": status,
        "type": "about:blank",
        "title": title,
        "status": status,
    }


def validation_detail(messages: Any, location: str = "body") -> list[dict[str, Any]]:
    """Flatten marshmallow's nested messages into FastAPI-style ``[{loc, msg, type}]`` items."""
    items: list[dict[str, Any]] = []

    def walk(node: Any, loc: list[Any]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, [*loc, key])
        elif isinstance(node, list) and all(isinstance(m, str) for m in node):
            for message in node:
                items.append({"loc": loc, "msg": message, "type": "value_error"})
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, [*loc, index])
        else:
            items.append({"loc": loc, "msg": str(node), "type": "value_error"})

    walk(messages, [location])
    return items


def validation_error(messages: Any, location: str = "body") -> APIError:
    """A 422 whose ``error`` names the first problem and whose ``detail`` lists them all."""
    detail = validation_detail(messages, location)
    first = detail[0] if detail else {"loc": [location], "msg": "Invalid input"}
    where = ".".join(str(p) for p in first["loc"][1:]) or location
    return APIError(422, f"Validation failed: {where}: {first['msg']}", detail=detail)


JSON_MEDIA_TYPE = "application/json"
_MAX_ECHOED_MEDIA_TYPE = 100


def is_json_media_type(content_type: str | None) -> bool:
    """Whether a request body labelled ``content_type`` is read as JSON: ``application/json``
    (any parameters), or no label at all, which the old API (FastAPI) also read as JSON."""
    essence = (content_type or "").split(";", 1)[0].strip().lower()
    return essence in ("", JSON_MEDIA_TYPE)


def unsupported_media_type(content_type: str | None) -> APIError:
    """415 for a body that is not JSON, naming what was sent and what to send."""
    sent = (content_type or "").split(";", 1)[0].strip()[:_MAX_ECHOED_MEDIA_TYPE]
    return APIError(
        415,
        f"Unsupported Content-Type '{sent}': send the body as JSON, with "
        f"Content-Type: {JSON_MEDIA_TYPE}",
    )


def malformed_json(exc: BaseException) -> APIError:
    """422 for a body that does not parse as JSON, saying where (line, column; ``loc`` holds
    the character offset, as FastAPI's ``json_invalid`` item does). ``exc``: the parser's
    error, or Falcon's ``MediaMalformedError`` raised from it."""
    cause = exc.__cause__ if isinstance(exc, falcon.MediaMalformedError) else exc
    if isinstance(cause, json.JSONDecodeError):  # orjson's error subclasses it
        message = f"Malformed JSON body at line {cause.lineno}, column {cause.colno}: {cause.msg}"
        detail = [{"loc": ["body", cause.pos], "msg": cause.msg, "type": "json_invalid"}]
        return APIError(422, message, detail=detail)
    message = "Malformed JSON body"
    return APIError(
        422, message, detail=[{"loc": ["body"], "msg": message, "type": "json_invalid"}]
    )


def _write(resp: falcon.asgi.Response, status: int, body: dict[str, Any]) -> None:
    resp.status = status
    resp.media = body
    resp.content_type = falcon.MEDIA_JSON


async def _handle_api_error(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, ex: APIError, params: dict[str, Any]
) -> None:
    _write(resp, ex.status, error_body(ex.status, ex.message, ex.detail))
    for name, value in ex.headers.items():
        resp.set_header(name, value)


async def _handle_validation(
    req: falcon.asgi.Request,
    resp: falcon.asgi.Response,
    ex: ValidationError,
    params: dict[str, Any],
) -> None:
    await _handle_api_error(req, resp, validation_error(ex.messages), params)


async def _handle_http_error(
    req: falcon.asgi.Request,
    resp: falcon.asgi.Response,
    ex: falcon.HTTPError,
    params: dict[str, Any],
) -> None:
    if isinstance(ex, falcon.MediaMalformedError):
        await _handle_api_error(req, resp, malformed_json(ex), params)
        return
    if isinstance(ex, falcon.HTTPUnsupportedMediaType):
        await _handle_api_error(req, resp, unsupported_media_type(req.content_type), params)
        return
    status = ex.status_code
    message = ex.title or HTTPStatus(status).phrase
    if isinstance(ex, falcon.HTTPRouteNotFound) or (status == 404 and ex.description is None):
        message = "Not Found"
    elif isinstance(ex, falcon.HTTPMethodNotAllowed):
        message = "Method Not Allowed"
    elif ex.description:
        message = ex.description
    _write(resp, status, error_body(status, message))
    for name, value in dict(ex.headers or {}).items():
        resp.set_header(name, value)


async def _handle_unexpected(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, ex: Exception, params: dict[str, Any]
) -> None:
    # Database outages are mapped to 503 by the db module's own handler; anything reaching
    # here is a bug, logged with its traceback and answered without internals.
    log.exception("unhandled_error", error=type(ex).__name__)
    _write(resp, 500, error_body(500, "Internal server error"))


def install_error_handlers(app: falcon.asgi.App) -> None:
    """Route every exception into the JSON error shape (most specific handler wins)."""
    app.add_error_handler(Exception, _handle_unexpected)
    app.add_error_handler(falcon.HTTPError, _handle_http_error)
    app.add_error_handler(ValidationError, _handle_validation)
    app.add_error_handler(APIError, _handle_api_error)
