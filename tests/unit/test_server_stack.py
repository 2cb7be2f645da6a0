"""`taskflow serve` / `taskflow dev` choose uvloop + httptools when installed, fall back to
asyncio / h11 where they are not (with a warning), and refuse a stack that is asked for by name
but missing, or a name that is not a stack, with a message instead of uvicorn's traceback."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs
from taskflow_cli import server
from taskflow_cli.main import main
from taskflow_core.config import ConfigError


def test_auto_is_uvloop_and_bounded_httptools() -> None:
    stack = server.resolve_stack()
    assert (stack.loop, stack.http) == ("uvloop", "httptools")
    assert stack.uvicorn_http == "taskflow_core.http_protocol:HttpToolsProtocol"


def test_the_pure_python_stack_is_selectable() -> None:
    stack = server.resolve_stack("asyncio", "h11")
    assert (stack.loop, stack.uvicorn_http) == ("asyncio", "h11")


def test_auto_falls_back_where_uvloop_and_httptools_are_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A platform without their wheels (the dependency markers skip them there).
    monkeypatch.setattr(server, "_INSTALLED", {"uvloop": lambda: False, "httptools": lambda: False})
    with capture_logs() as logs:
        stack = server.resolve_stack()
    assert (stack.loop, stack.uvicorn_http) == ("asyncio", "h11")
    assert [(e["event"], e["missing"], e["using"]) for e in logs] == [
        ("server_stack_fallback", "uvloop", "asyncio"),
        ("server_stack_fallback", "httptools", "h11"),
    ]
    # Captured too: the fallback of the other half is logged again (and a logger another test
    # configured may write to a stream that is closed by now).
    loop_refused = r"--loop uvloop: .*not installed.*--loop auto"
    with capture_logs(), pytest.raises(ConfigError, match=loop_refused):
        server.resolve_stack("uvloop", "auto")
    http_refused = r"--http httptools: .*not installed.*--http auto"
    with capture_logs(), pytest.raises(ConfigError, match=http_refused):
        server.resolve_stack("auto", "httptools")


def test_an_unknown_stack_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "all", "--http", "h3"]) == 2
    assert "'h3' is not one of auto, httptools, h11" in capsys.readouterr().err


def test_the_environment_chooses_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UVICORN_LOOP", "asyncio")
    monkeypatch.setenv("UVICORN_HTTP", "bogus")
    assert main(["serve", "all"]) == 2
