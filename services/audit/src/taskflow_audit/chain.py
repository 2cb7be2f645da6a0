"""The hash chain of the audit trail: canonical encoding, entry hash, verification.

Each entry's ``hash`` is SHA-256 over the previous entry's hash (32 raw bytes) followed by the
canonical encoding of the entry: UTF-8 JSON of the fields in :data:`HASHED_FIELDS`, keys sorted,
no whitespace, non-ASCII kept as is, timestamps as UTC ISO-8601 with microseconds and ``Z``,
``event_id`` as the lowercase hyphenated UUID. Entry ids are contiguous from 1, so verification
also notices a missing entry. Everything here is pure: the store feeds rows in, in id order.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64

HASHED_FIELDS = (
    "id",
    "event_id",
    "tenant_id",
    "project_id",
    "entity_type",
    "entity_id",
    "action",
    "actor_id",
    "actor_handle",
    "actor_type",
    "details",
    "created_at",
    "recorded_at",
)
_TIME_FIELDS = ("created_at", "recorded_at")


def canonical_time(value: datetime) -> str:
    """``2026-01-02T03:04:05.000006Z``: the one spelling of a timestamp inside the chain."""
    if value.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    utc = value.astimezone(UTC)
    if utc.year < 1000:  # isoformat pads the year to four digits, the chain's spelling does not
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # isoformat is three times cheaper than strftime; its "+00:00" becomes "Z".
    return utc.isoformat(timespec="microseconds")[:-6] + "Z"


def _canonical_event_id(value: Any) -> str | None:
    if value is None:
        return None
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


def canonical_encoding(entry: Mapping[str, Any]) -> bytes:
    """The bytes hashed for ``entry`` (only :data:`HASHED_FIELDS` count; extras are ignored)."""
    document = {name: entry.get(name) for name in HASHED_FIELDS}
    document["event_id"] = _canonical_event_id(document["event_id"])
    for name in _TIME_FIELDS:
        if isinstance(value := document[name], datetime):
            document[name] = canonical_time(value)
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def entry_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of ``prev_hash`` (as raw bytes) followed by ``entry``'s canonical encoding."""
    digest = hashlib.sha256(bytes.fromhex(prev_hash))
    digest.update(canonical_encoding(entry))
    return digest.hexdigest()


@dataclass(frozen=True)
class BrokenLink:
    """The first place where the stored chain and its recomputation disagree.

    ``position`` is the 1-based place in the chain (equal to the id, since ids are contiguous);
    ``reason`` is one of ``missing``, ``link``, ``hash``, ``head``."""

    position: int
    entry_id: int | None
    reason: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "entry_id": self.entry_id,
            "reason": self.reason,
            "message": self.message,
        }


@dataclass(frozen=True)
class ChainReport:
    """What a verification found: how many entries it checked and the first broken link."""

    checked: int
    last_id: int
    last_hash: str
    broken: BrokenLink | None

    @property
    def ok(self) -> bool:
        return self.broken is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "last_id": self.last_id,
            "last_hash": self.last_hash,
            "first_broken": None if self.broken is None else self.broken.as_dict(),
        }


class ChainVerifier:
    """Recomputes the chain entry by entry (feed rows in id order) and keeps the first break.

    Checks, for each entry: its id is the next one (no entry missing), its ``prev_hash`` is the
    stored hash of the entry before it, and its ``hash`` is the recomputed one. ``finish`` also
    compares the last entry with the chain head, which notices a removed tail."""

    def __init__(self, start_id: int = 1, start_hash: str = GENESIS_HASH) -> None:
        self.expected_id = start_id
        self.prev_hash = start_hash
        self.checked = 0
        self.broken: BrokenLink | None = None

    def feed(self, entry: Mapping[str, Any]) -> None:
        entry_id = int(entry["id"])
        stored_prev = str(entry["prev_hash"])
        stored_hash = str(entry["hash"])
        self.checked += 1
        if self.broken is None:
            self.broken = self._check(entry, entry_id, stored_prev, stored_hash)
        self.expected_id = entry_id + 1
        self.prev_hash = stored_hash

    def _check(
        self, entry: Mapping[str, Any], entry_id: int, stored_prev: str, stored_hash: str
    ) -> BrokenLink | None:
        if entry_id != self.expected_id:
            return BrokenLink(
                self.expected_id,
                None,
                "missing",
                f"entry {self.expected_id} is missing (next stored entry is {entry_id})",
            )
        if stored_prev != self.prev_hash:
            return BrokenLink(
                entry_id,
                entry_id,
                "link",
                f"entry {entry_id} does not point at the hash of entry {entry_id - 1}",
            )
        if entry_hash(stored_prev, entry) != stored_hash:
            return BrokenLink(
                entry_id,
                entry_id,
                "hash",
                f"entry {entry_id} was altered: its content does not match its hash",
            )
        return None

    def finish(
        self, head_last_id: int | None = None, head_last_hash: str | None = None
    ) -> ChainReport:
        last_id = self.expected_id - 1
        if self.broken is None and head_last_id is not None:
            self.broken = _head_mismatch(last_id, self.prev_hash, head_last_id, head_last_hash)
        return ChainReport(self.checked, last_id, self.prev_hash, self.broken)


def _head_mismatch(
    last_id: int, last_hash: str, head_last_id: int, head_last_hash: str | None
) -> BrokenLink | None:
    if head_last_id > last_id:
        return BrokenLink(
            last_id + 1,
            None,
            "missing",
            f"entry {last_id + 1} is missing (the chain head records {head_last_id} entries)",
        )
    if head_last_id < last_id:
        return BrokenLink(
            head_last_id + 1,
            head_last_id + 1,
            "head",
            f"entry {head_last_id + 1} lies beyond the chain head ({head_last_id})",
        )
    if (head_last_hash or GENESIS_HASH) != last_hash:
        return BrokenLink(
            last_id, last_id or None, "head", f"entry {last_id} does not match the chain head"
        )
    return None


def verify_chain(
    entries: Iterable[Mapping[str, Any]],
    head_last_id: int | None = None,
    head_last_hash: str | None = None,
) -> ChainReport:
    """Verify a whole chain given in id order (and, optionally, the head it should end at)."""
    verifier = ChainVerifier()
    for entry in entries:
        verifier.feed(entry)
    return verifier.finish(head_last_id, head_last_hash)


@dataclass(frozen=True)
class LinkedEntry:
    """An entry of a subset of the chain (one project) with its neighbours' stored hashes."""

    entry: Mapping[str, Any]
    predecessor_hash: str | None  # stored hash of entry id - 1 (None: that entry is missing)
    successor_prev_hash: str | None  # prev_hash of entry id + 1 (None: this is the last entry)


class SubsetVerifier:
    """Verifies some entries of the chain (feed them in id order) and every link that touches
    them, keeping the first break; the streaming form of :func:`verify_subset`.

    For each entry: its hash is its recomputed hash, its ``prev_hash`` is its predecessor's
    stored hash, and its successor points at it (or, for the last entry, the head does). This is
    the project owner's check: it needs no other tenant's content, only neighbours' hashes."""

    def __init__(self, head_last_id: int, head_last_hash: str) -> None:
        self.head_last_id = head_last_id
        self.head_last_hash = head_last_hash
        self.checked = 0
        self.last_id = 0
        self.last_hash = GENESIS_HASH
        self.broken: BrokenLink | None = None

    def feed(self, item: LinkedEntry) -> None:
        entry = item.entry
        entry_id = int(entry["id"])
        stored_prev, stored_hash = str(entry["prev_hash"]), str(entry["hash"])
        self.checked += 1
        self.last_id, self.last_hash = entry_id, stored_hash
        if self.broken is None:
            self.broken = self._check(item, entry_id, stored_prev, stored_hash)

    def _check(
        self, item: LinkedEntry, entry_id: int, stored_prev: str, stored_hash: str
    ) -> BrokenLink | None:
        expected_prev = GENESIS_HASH if entry_id == 1 else item.predecessor_hash
        if expected_prev is None:
            return BrokenLink(
                entry_id - 1,
                None,
                "missing",
                f"entry {entry_id - 1} (before {entry_id}) is missing",
            )
        if stored_prev != expected_prev:
            return BrokenLink(
                entry_id,
                entry_id,
                "link",
                f"entry {entry_id} does not point at the hash of entry {entry_id - 1}",
            )
        if entry_hash(stored_prev, item.entry) != stored_hash:
            return BrokenLink(
                entry_id,
                entry_id,
                "hash",
                f"entry {entry_id} was altered: its content does not match its hash",
            )
        if item.successor_prev_hash is None:
            return _head_mismatch(entry_id, stored_hash, self.head_last_id, self.head_last_hash)
        if item.successor_prev_hash != stored_hash:
            return BrokenLink(
                entry_id + 1,
                entry_id + 1,
                "link",
                f"entry {entry_id + 1} does not point at the hash of entry {entry_id}",
            )
        return None

    def finish(self) -> ChainReport:
        return ChainReport(self.checked, self.last_id, self.last_hash, self.broken)


def verify_subset(
    linked: Iterable[LinkedEntry], head_last_id: int, head_last_hash: str
) -> ChainReport:
    """Verify some entries of the chain, given in id order (see :class:`SubsetVerifier`)."""
    verifier = SubsetVerifier(head_last_id, head_last_hash)
    for item in linked:
        verifier.feed(item)
    return verifier.finish()
