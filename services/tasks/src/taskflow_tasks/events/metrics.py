"""Metrics of events and webhooks, on the tasks service's ``/metrics``:

- ``taskflow_events_pending{consumer}``: outbox rows a consumer has not handled yet;
- ``taskflow_events_published_total{consumer,outcome}``: notification publishes;
- ``taskflow_webhook_deliveries_total{outcome}``: delivery attempts (delivered, failed, gone,
  refused);
- ``taskflow_webhook_delivery_latency_seconds``: from the change's commit (its outbox row) to
  the receiver's 2xx.

The workers record into one in-process :class:`EventMetrics`; the collector reads it at scrape
time (the pending counts are refreshed by the workers, at most every few seconds).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
PENDING_REFRESH = 5.0


class EventMetrics:
    def __init__(self) -> None:
        self.pending: dict[str, int] = {}
        self.pending_at = 0.0
        self.publishes: dict[tuple[str, str], int] = defaultdict(int)
        self.deliveries: dict[str, int] = defaultdict(int)
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0

    def published(self, consumer: str, outcome: str) -> None:
        self.publishes[(consumer, outcome)] += 1

    def delivered(self, outcome: str, latency: float | None = None) -> None:
        self.deliveries[outcome] += 1
        if latency is not None:
            self.latency_sum += latency
            for i, bound in enumerate(LATENCY_BUCKETS):
                if latency <= bound:
                    self.buckets[i] += 1
                    break
            else:
                self.buckets[-1] += 1

    def pending_due(self) -> bool:
        return time.monotonic() - self.pending_at >= PENDING_REFRESH

    def set_pending(self, pending: dict[str, int]) -> None:
        self.pending = dict(pending)
        self.pending_at = time.monotonic()


EVENT_METRICS = EventMetrics()


class EventsCollector(Collector):
    def __init__(self, service: str, metrics: EventMetrics = EVENT_METRICS) -> None:
        self.service = service
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        m = self.metrics
        pending = GaugeMetricFamily(
            "taskflow_events_pending",
            "Outbox rows an event consumer has not handled yet",
            labels=["service", "consumer"],
        )
        for consumer, count in sorted(m.pending.items()):
            pending.add_metric([self.service, consumer], count)
        yield pending
        published = CounterMetricFamily(
            "taskflow_events_published",
            "Events published to the notification service or Dapr, by outcome",
            labels=["service", "consumer", "outcome"],
        )
        for (consumer, outcome), count in sorted(m.publishes.items()):
            published.add_metric([self.service, consumer, outcome], count)
        yield published
        deliveries = CounterMetricFamily(
            "taskflow_webhook_deliveries",
            "Webhook delivery attempts, by outcome",
            labels=["service", "outcome"],
        )
        for outcome, count in sorted(m.deliveries.items()):
            deliveries.add_metric([self.service, outcome], count)
        yield deliveries
        latency = HistogramMetricFamily(
            "taskflow_webhook_delivery_latency_seconds",
            "From the change's commit to the receiver's 2xx",
            labels=["service"],
        )
        cumulative, buckets = 0, []
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), m.buckets, strict=True):
            cumulative += count
            buckets.append((str(bound) if bound != float("inf") else "+Inf", cumulative))
        latency.add_metric([self.service], buckets, sum_value=m.latency_sum)
        yield latency
