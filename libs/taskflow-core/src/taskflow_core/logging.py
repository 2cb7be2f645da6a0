"""structlog set-up and the request-context middleware (request id + one access line)."""

from __future__ import annotations

import functools
import logging
import random
import re
import sys
import time
from typing import Any

import falcon.asgi
import orjson
import structlog

from .config import Settings

REQUEST_ID_HEADER = "X-Request-Id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

access_log = structlog.get_logger("taskflow.access")


def configure_logging(settings: Settings) -> None:
    """JSON lines in production, readable console output in dev; level from LOG_LEVEL."""
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    renderer: Any
    factory: Any
    if settings.log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        factory = structlog.PrintLoggerFactory(file=sys.stderr)
    else:
        # orjson: the access line of every request is rendered here (~5x faster than json).
        renderer = structlog.processors.JSONRenderer(
            serializer=functools.partial(orjson.dumps, option=orjson.OPT_NON_STR_KEYS)
        )
        factory = structlog.BytesLoggerFactory(file=sys.stderr.buffer)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    if level > logging.DEBUG:
        # httpx logs every request it sends at INFO (each webhook delivery, relay batch, JWKS
        # fetch): our own lines say what matters (failures, retries, disabled endpoints).
        logging.getLogger("httpx").setLevel(logging.WARNING)


def new_request_id() -> str:
    """32 hex digits, as ``uuid4().hex``, from the process's PRNG: an id to correlate log lines,
    not a secret, so no ``os.urandom`` system call per request."""
    return f"{random.getrandbits(128):032x}"


class RequestContextMiddleware:
    """Reads or creates ``X-Request-Id``, echoes it, binds it to every log line of the request,
    and writes exactly one access line when the response is done."""

    def __init__(self, service: str) -> None:
        self.service = service

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        incoming = req.get_header(REQUEST_ID_HEADER)
        request_id = (
            incoming if incoming and _VALID_REQUEST_ID.match(incoming) else new_request_id()
        )
        req.context.request_id = request_id
        req.context.started = time.perf_counter()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id, service=self.service)
        resp.set_header(REQUEST_ID_HEADER, request_id)

    async def process_response(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: object,
        req_succeeded: bool,
    ) -> None:
        request_id = getattr(req.context, "request_id", None) or new_request_id()
        resp.set_header(REQUEST_ID_HEADER, request_id)
        started = getattr(req.context, "started", time.perf_counter())
        identity = getattr(req.context, "identity", None)
        status = resp.status if isinstance(resp.status, int) else int(str(resp.status)[:3])
        access_log.info(
            "request",
            method=req.method,
            path=req.path,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            user_id=getattr(identity, "sub", None),
        )
        structlog.contextvars.clear_contextvars()
