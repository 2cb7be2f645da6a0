"""The event loop's lag (issue 15, finding 1): measured by one probe per loop, exported on
/metrics, warned about once per stall for every app sharing the loop (``serve all``)."""

from __future__ import annotations

import asyncio
import time

from structlog.testing import capture_logs
from taskflow_core.metrics import EventLoopLag, ServiceMetrics
from taskflow_core.service import Lifecycle

from tests.unit.test_metrics import sample_value


def test_a_stall_is_measured_and_warned_once_for_every_app_on_the_loop() -> None:
    async def scenario() -> tuple[str, bool]:
        apps = {name: (Lifecycle(None), ServiceMetrics(name)) for name in ("tasks", "audit")}
        for name, (lifecycle, metrics) in apps.items():
            lifecycle.watch_event_loop(name, metrics)
            await lifecycle.process_startup(None, None)
        lag = apps["tasks"][1].event_loop_lag
        assert lag is not None and apps["audit"][1].event_loop_lag is lag  # one probe
        lag.warning_every = 3600.0  # one warning in this test, even on a busy machine
        await asyncio.sleep(0.1)
        time.sleep(0.3)  # noqa: ASYNC251 - holds the loop, as the step-by-step catch-up did
        await asyncio.sleep(0.1)
        text = (await apps["tasks"][1].exposition()).decode()
        for lifecycle, _metrics in apps.values():
            await lifecycle.process_shutdown(None, None)
        return text, lag._probe is None

    with capture_logs() as logs:
        text, stopped = asyncio.run(scenario())

    warnings = [entry for entry in logs if entry["event"] == "event_loop_lag"]
    assert len(warnings) == 1, warnings
    assert warnings[0]["services"] == ["tasks", "audit"] and warnings[0]["log_level"] == "warning"
    assert warnings[0]["lag_ms"] >= 200 and warnings[0]["cpu_ms"] is not None
    worst = sample_value(text, "taskflow_event_loop_lag_seconds", service="tasks")
    assert worst is not None and worst >= 0.2
    over_threshold = sample_value(
        text, "taskflow_event_loop_lag_probe_seconds_bucket", service="tasks", le="0.05"
    )
    probes = sample_value(text, "taskflow_event_loop_lag_probe_seconds_count", service="tasks")
    assert probes is not None and over_threshold is not None and probes > over_threshold
    assert stopped  # the probe ends with the last app


def test_the_gauge_is_the_worst_lag_of_the_window_and_the_histogram_keeps_all() -> None:
    now = [100.0]
    lag = EventLoopLag(window=10.0, clock=lambda: now[0])
    assert lag.worst() == 0.0
    with capture_logs() as logs:
        lag.observe(0.3)
        now[0] += 5
        lag.observe(0.01)
        lag.observe(0.002)
    assert lag.worst() == 0.3
    now[0] += 5.5  # the 0.3 s stall is older than the window
    assert lag.worst() == 0.01
    now[0] += 20
    assert lag.worst() == 0.0
    assert (lag.count, round(lag.total, 3)) == (3, 0.312)
    assert [e["lag_ms"] for e in logs if e["event"] == "event_loop_lag"] == [300.0]


def test_metrics_show_the_lag_only_once_the_app_runs() -> None:
    metrics = ServiceMetrics("demo")
    before = asyncio.run(metrics.exposition()).decode()
    assert "taskflow_event_loop_lag_seconds" not in before
    metrics.event_loop_lag = EventLoopLag()
    metrics.event_loop_lag.observe(0.07)
    text = asyncio.run(metrics.exposition()).decode()
    assert sample_value(text, "taskflow_event_loop_lag_seconds", service="demo") == 0.07
    assert (
        sample_value(text, "taskflow_event_loop_lag_probe_seconds_bucket", service="demo", le="0.1")
        == 1
    )
