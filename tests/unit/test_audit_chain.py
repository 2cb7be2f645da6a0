"""The audit hash chain: canonical encoding, hashes, and where verification finds a break."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from taskflow_audit.chain import (
    GENESIS_HASH,
    LinkedEntry,
    canonical_encoding,
    canonical_time,
    entry_hash,
    verify_chain,
    verify_subset,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)


def make_chain(n: int, project_of=lambda i: 1) -> list[dict]:
    entries = []
    prev = GENESIS_HASH
    for i in range(1, n + 1):
        entry = {
            "id": i,
            "event_id": uuid.UUID(int=i),
            "tenant_id": "org-a",
            "project_id": project_of(i),
            "entity_type": "task",
            "entity_id": 10 + i,
            "action": "updated",
            "actor_id": 3,
            "actor_handle": "@alice",
            "actor_type": "human",
            "details": {"title": {"before": "a", "after": f"b{i}"}, "note": "café"},
            "created_at": T0 + timedelta(seconds=i),
            "recorded_at": T0 + timedelta(seconds=i, milliseconds=1),
            "prev_hash": prev,
        }
        entry["hash"] = entry_hash(prev, entry)
        prev = entry["hash"]
        entries.append(entry)
    return entries


def test_canonical_encoding_is_sorted_compact_utf8_with_utc_times() -> None:
    entry = make_chain(1)[0]
    encoded = canonical_encoding(entry).decode()
    assert encoded.startswith('{"action":"updated","actor_handle":"@alice"')
    assert '"created_at":"2026-01-02T03:04:06.000006Z"' in encoded
    assert '"event_id":"00000000-0000-0000-0000-000000000001"' in encoded
    assert "café" in encoded and " " not in encoded.replace("café", "")
    # prev_hash and hash are not part of the hashed document; extra keys are ignored.
    assert "prev_hash" not in encoded
    assert canonical_encoding({**entry, "extra": 1}) == canonical_encoding(entry)


def test_same_instant_in_another_offset_hashes_the_same() -> None:
    entry = make_chain(1)[0]
    shifted = {**entry, "created_at": entry["created_at"].astimezone(timezone(timedelta(hours=5)))}
    assert canonical_encoding(shifted) == canonical_encoding(entry)
    with pytest.raises(ValueError):
        canonical_time(datetime(2026, 1, 1))


def test_stored_hashes_never_change() -> None:
    """Hashes already in the chain must verify forever: a known chain keeps its last hash, and
    the rare spellings (a year before 1000, an event id given as upper-case text) stay as they
    were first written."""
    assert make_chain(3)[-1]["hash"] == (
        "9d5dd7ea50dfd359c9f403f6ebbffad1e8050a6bd7ee46e472664808fe7d66bc"
    )
    entry = {
        **make_chain(1)[0],
        "created_at": datetime(999, 5, 6, 7, 8, 9, 10, tzinfo=timezone(timedelta(hours=-3))),
        "event_id": "0000000A-0000-0000-0000-000000000001",
    }
    encoded = canonical_encoding(entry).decode()
    assert '"created_at":"999-05-06T10:08:09.000010Z"' in encoded
    assert '"event_id":"0000000a-0000-0000-0000-000000000001"' in encoded


def test_hash_is_sha256_of_previous_hash_bytes_and_encoding() -> None:
    entry = make_chain(1)[0]
    expected = hashlib.sha256(bytes(32) + canonical_encoding(entry)).hexdigest()
    assert entry["hash"] == expected
    assert entry_hash("1" * 64, entry) != expected


def test_intact_chain_verifies() -> None:
    chain = make_chain(5)
    report = verify_chain(chain, head_last_id=5, head_last_hash=chain[-1]["hash"])
    assert report.ok and report.checked == 5 and report.last_id == 5
    assert verify_chain([], head_last_id=0, head_last_hash=GENESIS_HASH).ok


def test_altered_content_is_reported_at_its_position() -> None:
    chain = make_chain(6)
    chain[3] = {**chain[3], "details": {"title": "forged"}}
    report = verify_chain(chain, 6, chain[-1]["hash"])
    assert not report.ok
    assert report.broken is not None
    assert (report.broken.position, report.broken.entry_id, report.broken.reason) == (4, 4, "hash")


def test_altered_content_with_recomputed_hash_breaks_the_next_link() -> None:
    chain = make_chain(6)
    forged = {**chain[2], "action": "deleted"}
    forged["hash"] = entry_hash(forged["prev_hash"], forged)
    chain[2] = forged
    report = verify_chain(chain, 6, chain[-1]["hash"])
    assert report.broken is not None
    assert (report.broken.position, report.broken.reason) == (4, "link")


def test_missing_entry_and_truncated_tail() -> None:
    chain = make_chain(5)
    report = verify_chain(chain[:2] + chain[3:], 5, chain[-1]["hash"])
    assert report.broken is not None
    assert (report.broken.position, report.broken.reason) == (3, "missing")
    tail_cut = verify_chain(chain[:4], 5, chain[-1]["hash"])
    assert tail_cut.broken is not None
    assert (tail_cut.broken.position, tail_cut.broken.reason) == (5, "missing")


def _linked(chain: list[dict], project: int) -> list[LinkedEntry]:
    by_id = {e["id"]: e for e in chain}
    return [
        LinkedEntry(
            e,
            by_id[e["id"] - 1]["hash"] if e["id"] - 1 in by_id else None,
            by_id[e["id"] + 1]["prev_hash"] if e["id"] + 1 in by_id else None,
        )
        for e in chain
        if e["project_id"] == project
    ]


def test_subset_verification_sees_only_its_entries_but_every_link_touching_them() -> None:
    chain = make_chain(8, project_of=lambda i: 1 if i % 2 else 2)
    head = (8, chain[-1]["hash"])
    assert verify_subset(_linked(chain, 1), *head).ok
    assert verify_subset(_linked(chain, 2), *head).ok
    # Entry 3 (project 1) altered and re-hashed: project 1's check catches the link to 4.
    forged = {**chain[2], "details": {}}
    forged["hash"] = entry_hash(forged["prev_hash"], forged)
    tampered = [*chain[:2], forged, *chain[3:]]
    report = verify_subset(_linked(tampered, 1), *head)
    assert report.broken is not None
    assert (report.broken.position, report.broken.reason) == (4, "link")
    # Entry 4 (project 2) altered in place: project 2's check reports it.
    altered = [*chain[:3], {**chain[3], "action": "forged"}, *chain[4:]]
    report2 = verify_subset(_linked(altered, 2), *head)
    assert report2.broken is not None
    assert (report2.broken.position, report2.broken.reason) == (4, "hash")


def test_subset_last_entry_must_match_the_head() -> None:
    chain = make_chain(3)
    assert verify_subset(_linked(chain, 1), 3, chain[-1]["hash"]).ok
    report = verify_subset(_linked(chain, 1), 4, "f" * 64)
    assert report.broken is not None and report.broken.reason == "missing"
    assert report.broken.position == 4


def test_encoding_and_hash_are_pinned() -> None:
    """Stored chains depend on these exact bytes: changing the encoding breaks every chain."""
    entry = {
        "id": 1,
        "event_id": uuid.UUID(int=1),
        "tenant_id": "org-a",
        "project_id": 2,
        "entity_type": "task",
        "entity_id": 3,
        "action": "created",
        "actor_id": 4,
        "actor_handle": "@a",
        "actor_type": "human",
        "details": {"b": [1, 2.5, None, True], "a": "é"},
        "created_at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        "recorded_at": datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC),
    }
    assert canonical_encoding(entry).decode() == (
        '{"action":"created","actor_handle":"@a","actor_id":4,"actor_type":"human",'
        '"created_at":"2026-01-02T03:04:05.000006Z","details":{"a":"é","b":[1,2.5,null,true]},'
        '"entity_id":3,"entity_type":"task","event_id":"00000000-0000-0000-0000-000000000001",'
        '"id":1,"project_id":2,"recorded_at":"2026-01-02T03:04:06.000000Z","tenant_id":"org-a"}'
    )
    assert entry_hash(GENESIS_HASH, entry) == (
        "5cded774c9cf837d8e47ef5265fb35fcf6f70a4931aab639aeba2db66933b857"
    )
