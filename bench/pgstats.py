"""PostgreSQL's time per request, read from ``pg_stat_statements`` (``run.py --pg-stats``).

It needs a server with ``shared_preload_libraries = 'pg_stat_statements'``; a shared server is
not restarted for a bench, so ``bench/README.md`` shows a side cluster to point
``DATABASE_URL`` at. The statistics are reset before each measured run and read after it:
the execution time of every statement run in the bench database during the run (what the
outbox relay and audit ingestion did meanwhile included), per request, and the statements that
took most. Execution time is the backends' time inside the executor: planning, parsing and the
protocol are not in it, so it is a floor of PostgreSQL's CPU per request, not all of it.
Planning time is read too, but PostgreSQL only keeps it with
``pg_stat_statements.track_planning = on`` (``bench/README.md``); otherwise it reads 0.
Statements run inside a function (``tasks.list_page_ids``'s EXECUTE) are not counted apart:
their planning and execution are part of the calling statement's execution time.
"""

from __future__ import annotations

from typing import Any

import psycopg

TOP = 4


def available(admin_url: str) -> bool:
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SELECT pg_stat_statements_reset()")
        return True
    except psycopg.Error:
        return False


def reset(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")


def read(admin_url: str, dbname: str, requests: int) -> dict[str, Any]:
    """PostgreSQL ms and statements per request since the last reset, and the top statements."""
    per = max(requests, 1)
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT s.query, s.calls, s.total_exec_time, s.shared_blks_hit, s.shared_blks_read,"
            " s.total_plan_time"
            " FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
            " WHERE d.datname = %s ORDER BY s.total_exec_time DESC",
            (dbname,),
        ).fetchall()
        tracked = conn.execute("SELECT current_setting('pg_stat_statements.track_planning')")
        track_planning = tracked.fetchone()[0] == "on"  # type: ignore[index]
    total_ms = sum(float(r[2]) for r in rows)
    return {
        "pg_exec_ms_per_req": round(total_ms / per, 4),
        "pg_plan_ms_per_req": round(sum(float(r[5]) for r in rows) / per, 4),
        "track_planning": track_planning,
        "pg_calls_per_req": round(sum(int(r[1]) for r in rows) / per, 2),
        "pg_blocks_read_per_req": round(sum(int(r[4]) for r in rows) / per, 2),
        "pg_blocks_hit_per_req": round(sum(int(r[3]) for r in rows) / per, 1),
        "top": [
            {
                "query": " ".join(str(r[0]).split())[:120],
                "ms_per_req": round(float(r[2]) / per, 4),
                "calls_per_req": round(int(r[1]) / per, 2),
            }
            for r in rows[:TOP]
        ],
    }
