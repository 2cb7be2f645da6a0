"""PostgreSQL access tuned for Neon serverless: URL normalisation, the pool, outage mapping.

Neon drops idle connections after 5 minutes and its ``-pooler`` hosts are PgBouncer in
transaction mode, so connections are checked before use, recycled well inside that window, and
prepared statements are turned off for pooled hosts.
"""

from __future__ import annotations

import asyncio
import random
import select
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import falcon.asgi
import psycopg
import psycopg_pool
import structlog
from psycopg.rows import dict_row

from .config import ConfigError, Settings
from .errors import ServiceUnavailable, error_body

log = structlog.get_logger("taskflow.db")

_SCHEMES = {
    "postgres": "postgresql",
    "postgresql": "postgresql",
    "postgresql+asyncpg": "postgresql",
    "postgresql+psycopg": "postgresql",
    "postgresql+psycopg2": "postgresql",
}
# asyncpg's ``ssl=`` values and the libpq ``sslmode`` each stands for.
_SSL_TO_SSLMODE = {
    "true": "require",
    "1": "require",
    "false": "disable",
    "0": "disable",
}

DB_UNAVAILABLE = "Database unavailable, retry shortly"


@dataclass(frozen=True)
class DatabaseTarget:
    """A normalised DATABASE_URL: a libpq URI plus what the pool must know about the host."""

    conninfo: str
    pooled: bool  # PgBouncer in transaction mode (Neon's ``-pooler`` hosts)

    @property
    def prepare_threshold(self) -> int | None:
        return None if self.pooled else 5


def normalize_database_url(url: str | None) -> DatabaseTarget:
    """Turn any DATABASE_URL spelling the old API accepted into a URI psycopg understands.

    ``postgres://``, ``postgresql://`` and ``postgresql+asyncpg://`` all work; asyncpg's
    ``ssl=require`` becomes ``sslmode=require``; libpq parameters such as ``sslmode`` and
    ``channel_binding`` are kept (psycopg understands them); a repeated parameter keeps its last
    value.
    """
    if not url or not url.strip():
        raise ConfigError("DATABASE_URL is required")
    parts = urlsplit(url.strip())
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ConfigError(f"DATABASE_URL scheme '{parts.scheme}' is not a PostgreSQL URL")
    params: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "ssl":
            key, value = "sslmode", _SSL_TO_SSLMODE.get(value.lower(), value)
        params[key] = value
    conninfo = urlunsplit((scheme, parts.netloc, parts.path, urlencode(params), parts.fragment))
    host = (parts.hostname or "").lower()
    return DatabaseTarget(conninfo=conninfo, pooled="-pooler" in host.split(".")[0])


def connection_kwargs(
    target: DatabaseTarget, settings: Settings, application_name: str
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "application_name": application_name,
        "connect_timeout": max(1, int(settings.db_connect_timeout)),
        "prepare_threshold": target.prepare_threshold,
        "row_factory": dict_row,
    }
    if not target.pooled:
        # PgBouncer refuses the ``options`` startup parameter; pooled hosts rely on the
        # server-side default statement timeout instead.
        kwargs["options"] = f"-c statement_timeout={settings.db_statement_timeout_ms}"
    return kwargs


def _server_spoke(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether an idle connection has something to read: the server's termination notice or
    the EOF of a dropped connection (an idle connection is otherwise silent)."""
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


async def _alive(conn: psycopg.AsyncConnection[Any]) -> bool:
    if conn.broken or conn.closed:
        return False
    try:
        if _server_spoke(conn):
            await psycopg_pool.AsyncConnectionPool.check_connection(conn)
    except Exception:  # any failure means "replace it"
        return False
    return True


class CheckedPool(psycopg_pool.AsyncConnectionPool):
    """A pool that hands out only live connections, without a round trip per checkout.

    An idle connection the server has dropped (Neon's idle cut, ``pg_terminate_backend``, a
    restart) has its termination notice or EOF waiting on the socket; only then is it checked
    with a query, and a dead one is discarded (the pool opens a replacement) and the next one
    tried at once. psycopg_pool's own ``check`` costs a round trip on every checkout and backs
    off 1 s, then 2 s, after each dead connection, so a pool full of dropped connections
    turned the first requests after an outage into 503s.
    """

    async def getconn(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - the signature it overrides
    ) -> psycopg.AsyncConnection[Any]:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise psycopg_pool.PoolTimeout(
                    f"couldn't get a live connection after {timeout or self.timeout:.2f} sec"
                )
            conn = await super().getconn(timeout=remaining)
            if await _alive(conn):
                return conn
            log.info("db_connection_dropped", pool=self.name)
            await conn.close()
            await self.putconn(conn)  # closed: discarded and replaced by the pool


def create_pool(settings: Settings, application_name: str) -> psycopg_pool.AsyncConnectionPool:
    """An unopened pool (``await pool.open()`` at startup, inside the running loop)."""
    target = normalize_database_url(settings.database_url)
    return CheckedPool(
        target.conninfo,
        kwargs=connection_kwargs(target, settings, application_name),
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        open=False,
        max_lifetime=300.0,
        max_idle=240.0,  # under Neon's 5-minute idle cut
        timeout=settings.db_pool_timeout,
        reconnect_timeout=60.0,
        name=application_name,
    )


async def open_pool(pool: psycopg_pool.AsyncConnectionPool) -> None:
    """Open without waiting: a database that is down at start is a 503, not a crash."""
    await pool.open(wait=False)


async def retry_connect(conninfo: str, attempts: int = 6, **kwargs: Any) -> psycopg.AsyncConnection:
    """Connect with exponential backoff and jitter (Neon computes take a moment to wake)."""
    delay = 0.25
    for attempt in range(1, attempts + 1):
        try:
            return await psycopg.AsyncConnection.connect(conninfo, **kwargs)
        except psycopg.OperationalError as exc:
            if attempt == attempts:
                raise
            log.warning("db_connect_retry", attempt=attempt, error=str(exc).strip()[:200])
            await asyncio.sleep(delay + random.uniform(0, delay / 2))
            delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")


@asynccontextmanager
async def transaction(
    pool: psycopg_pool.AsyncConnectionPool,
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """One unit of work: a pooled connection inside a transaction."""
    async with pool.connection() as conn, conn.transaction():
        yield conn


async def ping(pool: psycopg_pool.AsyncConnectionPool, within: float = 2.0) -> None:
    """Raise if the database does not answer ``SELECT 1`` within ``within`` seconds."""
    async with asyncio.timeout(within):
        async with pool.connection(timeout=within) as conn:
            await conn.execute("SELECT 1")


DATABASE_OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg_pool.PoolTimeout,
    psycopg_pool.TooManyRequests,
    psycopg.errors.QueryCanceled,
    psycopg.errors.AdminShutdown,
)


async def _handle_outage(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, ex: Exception, params: dict[str, Any]
) -> None:
    log.error("database_unavailable", error=type(ex).__name__, message=str(ex).strip()[:200])
    unavailable = ServiceUnavailable(DB_UNAVAILABLE, retry_after=5)
    resp.status = unavailable.status
    resp.media = error_body(unavailable.status, unavailable.message)
    resp.set_headers(unavailable.headers)


# Text the database cannot hold: a safety net behind validation (which refuses NUL already).
UNSTORABLE_TEXT_ERRORS: tuple[type[Exception], ...] = (
    psycopg.errors.UntranslatableCharacter,
    psycopg.errors.CharacterNotInRepertoire,
)
UNSTORABLE_TEXT = "Input contains characters that cannot be stored"


def is_unstorable_input(ex: Exception) -> bool:
    """Whether ``ex`` comes from client text the database cannot hold.

    psycopg raises a bare ``DataError`` (no SQLSTATE) when it refuses to send a NUL byte; the
    server's character-set errors have their own classes. Other ``DataError`` subclasses
    (division by zero, out-of-range values) stay server errors: they point at a missing check.
    """
    if isinstance(ex, UNSTORABLE_TEXT_ERRORS):
        return True
    return type(ex) is psycopg.DataError and getattr(ex, "sqlstate", None) is None


async def _handle_data_error(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, ex: Exception, params: dict[str, Any]
) -> None:
    if not is_unstorable_input(ex):
        # Same answer as the generic handler: a bug, logged with its traceback.
        log.exception("unhandled_error", error=type(ex).__name__)
        resp.status = 500
        resp.media = error_body(500, "Internal server error")
        return
    log.warning("unstorable_input", path=req.path, error=type(ex).__name__)
    resp.status = 422
    resp.media = error_body(422, UNSTORABLE_TEXT)


def is_lost_connection(ex: Exception) -> bool:
    """A client-side protocol error with no SQLSTATE: the server side of the connection went
    away mid-command (PgBouncer reports a killed server connection as "received 2 results from
    command 'COMMIT'"). The pool's check discards such a connection on its next checkout."""
    return isinstance(ex, psycopg.InternalError) and getattr(ex, "sqlstate", None) is None


async def _handle_internal_error(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, ex: Exception, params: dict[str, Any]
) -> None:
    if is_lost_connection(ex):
        await _handle_outage(req, resp, ex, params)
        return
    log.exception("unhandled_error", error=type(ex).__name__)
    resp.status = 500
    resp.media = error_body(500, "Internal server error")


def install_outage_handler(app: falcon.asgi.App) -> None:
    """Map database outages to 503 + Retry-After (never a 500 or a hang), and text the
    database cannot store (NUL, invalid characters) to a 422."""
    for exc_type in DATABASE_OUTAGE_ERRORS:
        app.add_error_handler(exc_type, _handle_outage)
    app.add_error_handler(psycopg.DataError, _handle_data_error)
    app.add_error_handler(psycopg.InternalError, _handle_internal_error)
