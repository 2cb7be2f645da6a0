"""Small in-process caches keyed by credential hash (introspection answers, verified tokens)."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


def credential_hash(credential: str) -> str:
    """Cache key for a credential: its SHA-256, so no raw secret sits in memory maps."""
    return hashlib.sha256(credential.encode()).hexdigest()


@dataclass(frozen=True)
class Cached(Generic[T]):
    value: T
    expires_at: float


class TTLCache(Generic[T]):
    """A bounded map whose entries expire; oldest entries go first when it is full."""

    def __init__(self, max_entries: int = 10_000, *, now: Callable[[], float] = time.time) -> None:
        self.max_entries = max_entries
        self.now = now
        self._entries: OrderedDict[str, Cached[T]] = OrderedDict()

    def get(self, key: str) -> Cached[T] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self.now():
            del self._entries[key]
            return None
        return entry

    def put(self, key: str, value: T, ttl: float) -> None:
        if ttl <= 0:
            return
        self._entries[key] = Cached(value, self.now() + ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def remaining(self, key: str) -> float:
        entry = self.get(key)
        return 0.0 if entry is None else max(0.0, entry.expires_at - self.now())

    def __len__(self) -> int:
        return len(self._entries)
