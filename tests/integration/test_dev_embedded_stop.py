"""`taskflow dev` on its embedded PostgreSQL: however the stack is stopped (Ctrl-C at the
terminal, or SIGTERM from a process manager), the database stops with it and no server is
left holding the data folder."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.processes import free_port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.embedded
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_dev_stops_its_embedded_database(tmp_path: Path, stop: signal.Signals) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["TASKFLOW_DATA_DIR"] = str(tmp_path / "dev")
    pidfile = tmp_path / "dev" / "pgdata" / "postmaster.pid"
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "taskflow_cli.main", "dev", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    postmaster = None
    try:
        deadline = time.monotonic() + 120
        ready = False
        while not ready and time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                ready = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
            time.sleep(0.2)
        assert ready, log.read_text(errors="replace")[-2000:]
        postmaster = int(pidfile.read_text().split()[0])
        assert _alive(postmaster)

        proc.send_signal(stop)
        proc.wait(timeout=60)
        output = log.read_text(errors="replace")
        assert "embedded PostgreSQL stopped" in output, output[-2000:]
        deadline = time.monotonic() + 30
        while _alive(postmaster) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(postmaster), f"PostgreSQL {postmaster} outlived `taskflow dev`"
        assert not pidfile.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        if postmaster is not None and _alive(postmaster):
            os.kill(postmaster, signal.SIGTERM)  # never leave a server behind
