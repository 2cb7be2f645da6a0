"""What `taskflow dev` shows a newcomer: a few lines, then the banner last (with the embedded
database's URL, which `taskflow audit verify` also finds on its own), and a busy port reported
at once with a `--port` hint, before anything is started."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.support.processes import free_port

BANNER_START = "TaskFlow dev stack on"
MAX_LINES_BEFORE_BANNER = 8


def _dev_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "LOG_LEVEL"}}
    env["TASKFLOW_DATA_DIR"] = str(data_dir)
    return env


def _taskflow(*args: str) -> list[str]:
    return [sys.executable, "-m", "taskflow_cli.main", *args]


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.embedded
def test_dev_prints_a_few_lines_then_the_banner_with_the_database_url(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "dev"
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            _taskflow("dev", "--port", str(port)),
            env=_dev_env(data_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        ready = False
        while not ready and time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                ready = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
            time.sleep(0.2)
        assert ready, log.read_text(errors="replace")[-3000:]
        time.sleep(1.0)  # anything start-up still prints comes now
        lines = _lines(log.read_text(errors="replace"))
        starts = [i for i, line in enumerate(lines) if BANNER_START in line]
        assert starts, "\n".join(lines)
        before, banner = lines[: starts[0]], lines[starts[0] :]
        assert len(before) <= MAX_LINES_BEFORE_BANNER, "\n".join(before)
        # Banner last: it ends with its curl line, and after it come only the access lines of
        # the /health polls above.
        end = next(i for i, line in enumerate(banner) if line.lstrip().startswith("curl "))
        assert all(" request " in line and "path=" in line for line in banner[end + 1 :]), (
            "\n".join(banner)
        )
        urls = [m.group(1) for line in banner for m in [re.search(r"database:\s+(\S+)", line)] if m]
        assert urls, "\n".join(banner)
        with psycopg.connect(urls[0]) as conn:  # what psql would be pointed at
            assert conn.execute("SELECT count(*) FROM tasks.projects").fetchone() is not None

        verify = subprocess.run(
            _taskflow("audit", "verify"),
            env=_dev_env(data_dir),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "audit chain: OK" in verify.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    # Once the stack is gone, verify says how to reach a database instead of guessing.
    after_stop = subprocess.run(
        _taskflow("audit", "verify"),
        env=_dev_env(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert after_stop.returncode == 2
    assert "DATABASE_URL" in after_stop.stderr


def test_dev_reports_a_busy_port_at_once_with_a_hint(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            _taskflow("dev", "--port", str(port)),
            env=_dev_env(tmp_path / "dev"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"port {port}" in result.stderr and "--port" in result.stderr, result.stderr
    assert BANNER_START not in result.stdout
    # Nothing was started: no embedded database was created for a stack that cannot run.
    assert not (tmp_path / "dev" / "pgdata").exists()
