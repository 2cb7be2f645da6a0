"""The relay's rules, free of I/O: backoff delays, batch sizing, reading the audit service's
acknowledgement."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Backoff:
    """Exponential delays between failed deliveries: ``base``, doubling, up to ``cap``."""

    base: float
    cap: float
    jitter: float = 0.2

    @classmethod
    def for_interval(cls, interval: float) -> Backoff:
        """Starts at the polling interval; capped at 30 intervals, and never above 30 s."""
        base = max(0.05, interval)
        return cls(base=base, cap=max(base, min(30.0, 30 * base)))

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        if failures <= 0:
            return 0.0
        raw = min(self.cap, self.base * 2 ** (failures - 1))
        return raw * (1 - self.jitter + 2 * self.jitter * rand())


def fit_batch(rows: list[dict[str, Any]], max_bytes: int) -> list[dict[str, Any]]:
    """The longest prefix of ``rows`` whose payloads (``size`` bytes each) fit in ``max_bytes``,
    and always at least the first row (an oversized one is dealt with on its own)."""
    kept: list[dict[str, Any]] = []
    total = 0
    for row in rows:
        if kept and total + int(row["size"]) > max_bytes:
            break
        kept.append(row)
        total += int(row["size"])
    return kept


@dataclass(frozen=True)
class Acknowledgement:
    """The audit service's answer for a batch: event ids to mark delivered, and why some were
    refused (a malformed event is never retried; it would block every event behind it)."""

    delivered: list[int]
    rejected: dict[int, str]
    missing: list[int]


def read_acknowledgement(batch: list[dict[str, Any]], body: Any) -> Acknowledgement:
    """Match the answer's per-event results to the outbox rows of ``batch`` by event id."""
    results = body.get("results") if isinstance(body, dict) else None
    by_event: dict[str, dict[str, Any]] = {}
    for result in results if isinstance(results, list) else []:
        if isinstance(result, dict) and result.get("event_id") is not None:
            by_event[str(result["event_id"])] = result
    delivered: list[int] = []
    rejected: dict[int, str] = {}
    missing: list[int] = []
    for row in batch:
        result = by_event.get(str(row["event_id"]))
        status = result.get("status") if result else None
        if status in ("stored", "duplicate"):
            delivered.append(row["id"])
        elif status == "rejected" and result is not None:
            reason = str(result.get("reason") or "no reason given")
            rejected[row["id"]] = f"rejected by the audit service: {reason}"
        else:
            missing.append(row["id"])
    return Acknowledgement(delivered, rejected, missing)
