"""DATABASE_URL spellings the old API and Neon use all reach psycopg correctly."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict
from taskflow_core.config import ConfigError, Settings
from taskflow_core.db import connection_kwargs, normalize_database_url

NEON = (
    "postgresql://alex:secret@ep-cool-darkness-123456.us-east-2.aws.neon.tech/neondb"
    "?sslmode=require&channel_binding=require"
)
NEON_POOLER = (
    "postgres://alex:secret@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech/neondb"
    "?sslmode=require&channel_binding=require"
)


def test_neon_url_keeps_sslmode_and_channel_binding() -> None:
    target = normalize_database_url(NEON)
    params = conninfo_to_dict(target.conninfo)
    assert params["sslmode"] == "require"
    assert params["channel_binding"] == "require"
    assert params["host"] == "ep-cool-darkness-123456.us-east-2.aws.neon.tech"
    assert params["dbname"] == "neondb"
    assert params["user"] == "alex"
    assert not target.pooled
    assert target.prepare_threshold == 5


def test_pooler_host_disables_prepared_statements_and_startup_options() -> None:
    target = normalize_database_url(NEON_POOLER)
    assert target.conninfo.startswith("postgresql://")
    assert target.pooled
    assert target.prepare_threshold is None
    kwargs = connection_kwargs(target, Settings(), "taskflow-tasks")
    assert kwargs["prepare_threshold"] is None
    assert "options" not in kwargs  # PgBouncer refuses the options startup parameter
    assert kwargs["application_name"] == "taskflow-tasks"


def test_direct_host_sets_statement_timeout_and_prepares() -> None:
    target = normalize_database_url(NEON)
    kwargs = connection_kwargs(target, Settings(db_statement_timeout_ms=1234), "taskflow-audit")
    assert kwargs["options"] == "-c statement_timeout=1234"
    assert kwargs["prepare_threshold"] == 5


@pytest.mark.parametrize(
    ("url", "sslmode"),
    [
        ("postgresql+asyncpg://u:p@db.example.com:5433/app?ssl=require", "require"),
        ("postgresql+asyncpg://u:p@db.example.com:5433/app?ssl=true", "require"),
        ("postgresql+asyncpg://u:p@db.example.com:5433/app?ssl=disable", "disable"),
        ("postgresql://u:p@db.example.com:5433/app?sslmode=verify-full", "verify-full"),
    ],
)
def test_asyncpg_ssl_spelling_becomes_sslmode(url: str, sslmode: str) -> None:
    target = normalize_database_url(url)
    params = conninfo_to_dict(target.conninfo)
    assert target.conninfo.startswith("postgresql://")
    assert params["sslmode"] == sslmode
    assert "ssl" not in params
    assert params["port"] == "5433"


def test_repeated_parameter_keeps_last_value() -> None:
    target = normalize_database_url("postgres://h/db?sslmode=disable&sslmode=require")
    assert conninfo_to_dict(target.conninfo)["sslmode"] == "require"


def test_other_parameters_are_kept() -> None:
    target = normalize_database_url("postgres://h/db?application_name=x&connect_timeout=3")
    params = conninfo_to_dict(target.conninfo)
    assert params["connect_timeout"] == "3"


@pytest.mark.parametrize("url", ["", "   ", None])
def test_missing_url_is_a_config_error(url: str | None) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL is required"):
        normalize_database_url(url)


@pytest.mark.parametrize("url", ["mysql://h/db", "sqlite+aiosqlite:///:memory:"])
def test_non_postgres_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="not a PostgreSQL URL"):
        normalize_database_url(url)


def test_lost_connection_is_told_apart_from_server_internal_errors() -> None:
    import psycopg
    from taskflow_core.db import is_lost_connection

    assert is_lost_connection(psycopg.InternalError("received 2 results from command 'COMMIT'"))
    assert not is_lost_connection(psycopg.DataError("x"))

    class ServerInternal(psycopg.InternalError):
        sqlstate = "XX000"

    assert not is_lost_connection(ServerInternal("internal error"))
