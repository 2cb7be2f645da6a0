"""An embedded PostgreSQL (pgserver) for machines with no database: data in a local folder,
kept across restarts, stopped with the process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("taskflow.embedded")


def start_embedded_postgres(data_dir: Path) -> tuple[str, Any]:
    """Start (or reuse) the embedded server in ``data_dir/pgdata``; return its URL and handle."""
    import pgserver  # imported lazily: only machines without DATABASE_URL need it

    pgdata = (data_dir / "pgdata").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    url: str = server.get_uri()
    log.info("embedded_postgres_started", pgdata=str(pgdata))
    return url, server
