"""`taskflow routes`: every route of every service, each pointing at the code that answers it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from taskflow_cli.main import main
from taskflow_cli.stack import all_in_one
from taskflow_core.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _listed(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["routes", *args]) == 0
    return capsys.readouterr().out


def test_every_documented_operation_is_listed_with_its_code(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    rows = [json.loads(line) for line in _listed(capsys, "--json").splitlines()]
    listed = {(r["method"], r["path"]) for r in rows}
    settings = Settings(database_url="postgresql://u@127.0.0.1:1/unused", service_secret="x" * 32)
    document = json.loads(all_in_one(settings).openapi)
    for path, operations in document["paths"].items():
        for method in operations:
            assert (method.upper(), path) in listed, (method, path)
    for row in rows:
        for location in re.findall(r"(\S+\.py):(\d+)", row["where"]):
            source = (ROOT / location[0]).read_text().splitlines()[int(location[1]) - 1]
            assert re.match(r"\s*(class |async def |def |on_\w+ = )", source), (row, source)


def test_a_newcomer_finds_the_progress_route_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    lines = _listed(capsys).splitlines()
    (progress,) = [
        line for line in lines if re.match(r"PATCH\s+/api/tasks/\{task_id\}/progress", line)
    ]
    assert " tasks " in progress and "TaskProgress" in progress
    assert "services/tasks/src/taskflow_tasks/tasks/actions.py:" in progress
