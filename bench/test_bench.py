"""Checks of the benchmark's own parts (run: ``uv run pytest bench -q``): the generated wrk
scripts send what the scenarios mean, wrk's summary is read back, reports render."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bench.profiles import summarize
from bench.report import Row, markdown_table
from bench.wrk import RESULT_MARKER, Request, lua_script, parse_result, run_wrk


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, str, str]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.seen.append((self.command, self.path, body, self.headers.get("Authorization") or ""))
        status = 404 if self.path.endswith("/404") else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_PATCH = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Any:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed")
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _run(server: Any, request: Request, tmp_path: Path, token: str | None = "tok") -> Any:
    script = tmp_path / "s.lua"
    script.write_text(lua_script(request, token))
    host, port = server.server_address[:2]
    return run_wrk(f"http://{host}:{port}", script, duration_s=1, connections=2)


def test_alternating_bodies_start_with_the_first_value_for_every_id(
    recorder: Any, tmp_path: Path
) -> None:
    request = Request(
        "PATCH", "/t/{id}/status", body='{"status": "{alt:blocked|in_progress}"}', ids=(1, 2, 3)
    )
    _run(recorder, request, tmp_path)
    per_id: dict[str, list[str]] = {}
    for method, path, body, auth in _Recorder.seen:
        assert method == "PATCH"
        assert auth == "Bearer tok"
        per_id.setdefault(path, []).append(json.loads(body)["status"])
    for statuses in per_id.values():
        expected = ["blocked", "in_progress"] * len(statuses)
        assert statuses == expected[: len(statuses)]


def test_counters_ids_and_errors_are_reported(recorder: Any, tmp_path: Path) -> None:
    result = _run(
        recorder, Request("POST", "/p/{id}", body='{"n": {n}, "pct": {pct}}', ids=(404,)), tmp_path
    )
    assert result.requests > 0
    assert result.non_2xx_3xx == result.requests
    assert result.statuses == {"404": result.requests}
    bodies = [json.loads(body) for _, _, body, _ in _Recorder.seen]
    assert sorted(b["n"] for b in bodies)[:3] == [1, 2, 3]  # two connections: any order
    assert all(b["pct"] == b["n"] % 101 for b in bodies)


def test_no_token_no_authorization_header(recorder: Any, tmp_path: Path) -> None:
    _run(recorder, Request("GET", "/tasks/{id}", ids=(7,)), tmp_path, token=None)
    assert {auth for *_, auth in _Recorder.seen} == {""}
    assert {path for _, path, _, _ in _Recorder.seen} == {"/tasks/7"}


def test_parse_result_reads_the_done_line() -> None:
    line = RESULT_MARKER + json.dumps(
        {
            "requests": 1000,
            "duration_us": 2_000_000,
            "p50_us": 1500,
            "p90_us": 3000,
            "p99_us": 9000,
            "max_us": 12000,
            "status_errors": 3,
            "connect": 0,
            "read": 1,
            "write": 0,
            "timeout": 1,
            "statuses": {"503": 3},
        }
    )
    result = parse_result("Running 2s test\n" + line + "\nRequests/sec: 500\n")
    assert result.rps == 500
    assert (result.p50_ms, result.p90_ms, result.p99_ms) == (1.5, 3.0, 9.0)
    assert result.errors == 5
    assert result.statuses == {"503": 3}


def test_markdown_table_marks_targets_and_skips() -> None:
    rows = [
        Row(
            "get_task",
            "direct",
            "tasks",
            rps=100,
            p50_ms=1,
            p90_ms=2,
            p99_ms=3,
            errors=0,
            cpu_ms_per_req=1.0,
            x_control=1.5,
            target_x=2.0,
        ),
        Row(
            "list_tasks",
            "direct",
            "tasks",
            rps=50,
            p50_ms=1,
            p90_ms=2,
            p99_ms=3,
            errors=0,
            cpu_ms_per_req=3.0,
            x_control=4.5,
            target_x=4.0,
        ),
        Row("verify", "gateway", "auth-verifier", skipped="internal"),
    ]
    table = markdown_table(rows)
    assert "≤ 2x ok" in table
    assert "≤ 4x over" in table
    assert "skipped: internal" in table


def test_profile_summary_shares(tmp_path: Path) -> None:
    raw = tmp_path / "p.txt"
    raw.write_text(
        "main (app.py:1);handler (/src/taskflow_tasks/tasks.py:10);query (x.py:3) 30\n"
        "main (app.py:1);handler (/src/taskflow_tasks/tasks.py:10) 10\n"
    )
    text = summarize(raw)
    assert "40 samples" in text
    assert "75.0%  x.py:query" in text
    assert "100.0%  taskflow_tasks/tasks.py:handler" in text


def test_uvicorn_argv_selects_the_server_stack() -> None:
    from bench.procs import uvicorn_argv

    def stack(argv: list[str]) -> tuple[str, str]:
        return argv[argv.index("--loop") + 1], argv[argv.index("--http") + 1]

    assert stack(uvicorn_argv("a:app", 1)) == (
        "uvloop",
        "taskflow_core.http_protocol:HttpToolsProtocol",
    )
    assert stack(uvicorn_argv("a:app", 1, bounded_http=False)) == ("uvloop", "httptools")
    assert stack(uvicorn_argv("a:app", 1, "asyncio-h11")) == ("asyncio", "h11")
