"""What the fuzz runs share: the seed (new each run, ``FUZZ_SEED`` replays one), `taskflow serve
all` as a real process, the /health watchdog, and the schemathesis command line."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).parent
CONFIG = HERE / "schemathesis.toml"
HOOKS = HERE / "hooks.py"
ARTIFACTS = HERE.parents[1] / "test-artifacts"


def choose_seed() -> int:
    """``FUZZ_SEED`` when set (to replay a run), else a new random seed."""
    given = os.environ.get("FUZZ_SEED", "").strip()
    return int(given) if given else random.SystemRandom().randrange(1, 2**31)


SEED = choose_seed()
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "50"))


def replay_hint(seed: int = SEED) -> str:
    return f"fuzz seed {seed}; replay with FUZZ_SEED={seed} python3 uvw run pytest tests/fuzz -n 0"


class HealthWatchdog:
    """Polls ``GET <url>/health`` of each URL every ``interval`` seconds while the fuzzer runs;
    an answer slower than ``limit`` seconds, an error or a non-200 is a finding. A stalled event
    loop (a request or a background job holding it) shows here even when the fuzzer's own
    request is not the one that waits."""

    def __init__(self, urls: list[str], interval: float = 1.0, limit: float = 2.0) -> None:
        self.urls = urls
        self.interval = interval
        self.limit = limit
        self.findings: list[str] = []
        self.polls = 0
        self.slowest = 0.0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._watch, args=(url,), daemon=True) for url in urls
        ]

    def _watch(self, url: str) -> None:
        # A little over the limit: a stall shows as a slow answer, and a hang as a timeout.
        with httpx.Client(timeout=self.limit * 5) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    status = client.get(f"{url}/health").status_code
                    problem = None if status == 200 else f"status {status}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                took = time.monotonic() - started
                self.polls += 1
                self.slowest = max(self.slowest, took)
                if problem is None and took > self.limit:
                    problem = f"answered in {took:.2f} s (limit {self.limit} s)"
                if problem is not None:
                    stamp = time.strftime("%H:%M:%S")
                    self.findings.append(f"{stamp} GET {url}/health: {problem}")
                self._stop.wait(max(0.0, self.interval - took))

    def __enter__(self) -> HealthWatchdog:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.limit * 6)

    def summary(self) -> str:
        return f"{self.polls} polls of /health, slowest {self.slowest:.3f} s"


def run_schemathesis(
    base_url: str,
    headers: dict[str, str],
    report_dir: Path,
    max_examples: int = MAX_EXAMPLES,
    phases: str = "examples,coverage,fuzzing,stateful",
    seed: int = SEED,
) -> subprocess.CompletedProcess[str]:
    """schemathesis' CLI against ``base_url``'s own /openapi.json with tests/fuzz's settings."""
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url}/openapi.json",
        "--url",
        base_url,
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        "--phases",
        phases,
        "--no-color",
        "--output-truncate",
        "false",
        "--report",
        "ndjson",
        "--report-dir",
        str(report_dir),
    ]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=1800, check=False, cwd=report_dir, env=env
    )


def failures_section(output: str) -> str:
    """schemathesis' FAILURES section (each with a reproducing curl) plus its summary."""
    start = output.find("= FAILURES =")
    return output[start - 40 :] if start >= 0 else output


def keep_output(name: str, result: subprocess.CompletedProcess[str]) -> Path:
    """schemathesis' whole output under test-artifacts/, for CI to keep."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"fuzz-{name}.txt"
    path.write_text(f"{replay_hint()}\n\n{result.stdout}\n{result.stderr}")
    return path
