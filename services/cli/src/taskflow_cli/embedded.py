"""An embedded PostgreSQL (pgserver) for machines with no database: data in a local folder,
kept across restarts, stopped with the process.

While ``taskflow dev`` runs, its URL is kept in ``<data dir>/database-url`` so the operator
commands (``taskflow audit verify``) find the dev database without ``DATABASE_URL``."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("taskflow.embedded")

URL_FILE = "database-url"


def start_embedded_postgres(data_dir: Path) -> tuple[str, Any]:
    """Start (or reuse) the embedded server in ``data_dir/pgdata``; return its URL and handle."""
    # pgserver logs every initdb/pg_ctl command line and its whole output at INFO, and
    # platformdirs warns about XDG_RUNTIME_DIR on servers: a page of noise before the banner.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import pgserver  # imported lazily: only machines without DATABASE_URL need it

    pgdata = (data_dir / "pgdata").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    url: str = server.get_uri()
    (data_dir / URL_FILE).write_text(url + "\n", encoding="utf-8")
    log.info("embedded_postgres_started", pgdata=str(pgdata))
    return url, server


def running_dev_database(data_dir: Path) -> str | None:
    """The URL of the embedded database a running ``taskflow dev`` uses, if any."""
    try:
        return (data_dir / URL_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def forget_dev_database(data_dir: Path) -> None:
    (data_dir / URL_FILE).unlink(missing_ok=True)
