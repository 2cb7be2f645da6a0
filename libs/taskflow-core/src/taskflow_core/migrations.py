"""Plain SQL migrations per service, applied in order under a lock, recorded in a table.

The lock is a transaction-level advisory lock, so it works through PgBouncer in transaction
mode; two processes migrating at once serialise and the second finds nothing left to do.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from importlib.resources.abc import Traversable

import psycopg
import structlog

from .db import normalize_database_url

log = structlog.get_logger("taskflow.migrations")


def migration_files(package: str) -> list[tuple[str, str]]:
    """``(version, sql)`` for each ``NNNN_name.sql`` in ``package``'s ``migrations`` folder."""
    folder: Traversable = resources.files(package).joinpath("migrations")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


def apply_migrations(database_url: str, schema: str, package: str) -> list[str]:
    """Apply the pending migrations of ``package`` into ``schema``; return the versions applied."""
    target = normalize_database_url(database_url)
    lock_key = int.from_bytes(hashlib.sha256(f"taskflow:{schema}".encode()).digest()[:8], "big")
    lock_key -= 1 << 63 if lock_key >= 1 << 63 else 0
    applied: list[str] = []
    with (
        psycopg.connect(target.conninfo, prepare_threshold=None, autocommit=False) as conn,
        conn.transaction(),
    ):
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
            " version text PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute(f'SELECT version FROM "{schema}".schema_migrations')}
        for version, sql in migration_files(package):
            if version in done:
                continue
            conn.execute(f'SET LOCAL search_path TO "{schema}", public')
            conn.execute(sql)
            conn.execute(
                f'INSERT INTO "{schema}".schema_migrations (version) VALUES (%s)', (version,)
            )
            applied.append(version)
            log.debug("migration_applied", schema=schema, version=version)
    if applied:
        log.info("migrations_applied", schema=schema, versions=applied)
    return applied
