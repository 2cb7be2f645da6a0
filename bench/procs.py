"""Processes the benchmark starts: pinned to a CPU, tracked by PID, always stopped on exit.

CPU time and resident memory are read from /proc so the figures are those of the service process
itself, not of the machine.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SERVICE_CPU = 0  # the services share this core
DRIVER_CPU = 1  # wrk, nginx, PostgreSQL backends and this script


class BenchError(RuntimeError):
    """A problem the user must fix (missing tool, service that does not start, ...)."""


LOCK_PATH = Path("/tmp/taskflow-bench.lock")


@contextlib.contextmanager
def exclusive_run(wait_s: float = 1200.0, say: Callable[[str], None] = print) -> Iterator[None]:
    """One benchmark at a time on this machine: two runs would share the cores (and the
    database name) and spoil each other's figures. Waits at most ``wait_s`` for the other."""
    with open(LOCK_PATH, "a+") as handle:
        deadline = time.monotonic() + wait_s
        announced = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"another benchmark run holds {LOCK_PATH} since over {wait_s:.0f}s"
                    ) from None
                if not announced:
                    handle.seek(0)
                    say(f"another benchmark run is in progress ({handle.read().strip()}); waiting")
                    announced = True
                time.sleep(2)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}: {' '.join(sys.argv)}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cpu_count() -> int:
    return os.cpu_count() or 1


def pin_self_to_driver_cpu() -> None:
    """Keep this script (and the threads it runs, such as the test issuer) off the service core."""
    if cpu_count() > 1:
        os.sched_setaffinity(0, {DRIVER_CPU})


def pin(pid: int, cpu: int) -> bool:
    """Pin ``pid`` to ``cpu``; False when the process is gone or may not be moved."""
    if cpu_count() <= cpu:
        return False
    try:
        os.sched_setaffinity(pid, {cpu})
    except (ProcessLookupError, PermissionError, OSError):
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads) in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the ")" of comm: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def child_pids(pid: int) -> list[tuple[int, int]]:
    """(PID, start time) of the processes whose parent is ``pid`` (from /proc, no name match)."""
    found: list[tuple[int, int]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and int(fields[1]) == pid:
            found.append((int(entry.name), int(fields[19])))
    return found


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Managed:
    """One started process: its name, PID, log file and how to stop it."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    stop_signal: int = signal.SIGTERM

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process by PID; children it left behind (nginx workers) are killed by PID."""
        if not self.alive():
            return
        children = child_pids(self.pid)
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(self.stop_signal)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait(timeout=5)
        for pid, started in children:
            # Same PID and same start time: still the child seen before, not a reused PID.
            if _start_time(pid) == started:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)


@dataclass
class ProcessRegistry:
    """Starts processes and stops every one of them, by PID, in reverse order: at the end of a
    ``with`` block, at interpreter exit, and on SIGTERM/SIGINT."""

    log_dir: Path
    started: list[Managed] = field(default_factory=list)

    def __enter__(self) -> ProcessRegistry:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop_all)
        # SIGTERM becomes SystemExit so the ``finally`` blocks and this registry clean up.
        signal.signal(signal.SIGTERM, _raise_system_exit)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cpu: int | None = None,
        stop_signal: int = signal.SIGTERM,
        cwd: Path | None = None,
    ) -> Managed:
        log_path = self.log_dir / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
        if cpu is not None and cpu_count() > cpu:
            argv = ["taskset", "-c", str(cpu), *argv]
        try:
            proc = subprocess.Popen(
                list(argv),
                env={**os.environ, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
            )
        finally:
            log.close()
        managed = Managed(name, proc, log_path, stop_signal)
        self.started.append(managed)
        return managed

    def stop_all(self) -> None:
        while self.started:
            self.started.pop().stop()


def _raise_system_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def wait_until_healthy(
    managed: Managed, url: str, timeout: float = 30.0, ok: Callable[[int], bool] | None = None
) -> None:
    """Poll ``url`` until it answers (200 by default); raise with the log tail otherwise."""
    accept = ok or (lambda status: status == 200)
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not managed.alive():
            raise BenchError(
                f"{managed.name} exited with {managed.proc.returncode}; log {managed.log_path}:\n"
                f"{managed.log_tail()}"
            )
        try:
            status = httpx.get(url, timeout=1.0).status_code
            if accept(status):
                return
            last = f"HTTP {status}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    raise BenchError(
        f"{managed.name} not healthy at {url} after {timeout:.0f}s ({last}); "
        f"log {managed.log_path}:\n{managed.log_tail()}"
    )


# Server stacks (``--loop``, ``--http`` of uvicorn) a run can put the services and the control on.
SERVER_STACKS = {
    "uvloop-httptools": ("uvloop", "httptools"),  # production (the images, taskflow serve)
    "asyncio-h11": ("asyncio", "h11"),  # the pure-Python stack, for comparison
}
DEFAULT_STACK = "uvloop-httptools"
# The services run httptools as production does, with request heads bounded; the control runs
# uvicorn's own protocol (what `uvicorn[standard]` gives a bare app).
BOUNDED_HTTPTOOLS = "taskflow_core.http_protocol:HttpToolsProtocol"


def uvicorn_argv(
    app: str, port: int, stack: str = DEFAULT_STACK, *, bounded_http: bool = True
) -> list[str]:
    """One uvicorn worker, as the services run in production (no access log of uvicorn's own;
    the services write their own access line), on the named server stack."""
    loop, http = SERVER_STACKS[stack]
    if http == "httptools" and bounded_http:
        http = BOUNDED_HTTPTOOLS
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--lifespan",
        "on",
        "--workers",
        "1",
        "--loop",
        loop,
        "--http",
        http,
    ]


def run_exclusively(name: str, run: Callable[[], int], say: Callable[[str], None] = print) -> int:
    """A bench script's main: ``run`` alone on the machine (``exclusive_run``); a BenchError is
    exit 2 with its message, Ctrl-C exit 130 (every process the run started is stopped)."""
    try:
        with exclusive_run(say=say):
            return run()
    except BenchError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{name}: interrupted; every process it started was stopped", file=sys.stderr)
        return 130
