"""ETag / If-Match and the request fingerprint of Idempotency-Key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from taskflow_tasks import safe_writes

T0 = datetime(2025, 12, 31, 12, 0, 0, 123456, tzinfo=UTC)


def test_etag_changes_with_updated_at_and_ignores_the_zone_spelling() -> None:
    tag = safe_writes.etag("project", 7, T0)
    assert tag.startswith('"') and tag.endswith('"')
    assert tag != safe_writes.etag("project", 7, T0 + timedelta(microseconds=1))
    assert tag != safe_writes.etag("task", 7, T0)
    same_instant = T0.astimezone(timezone(timedelta(hours=5)))
    assert tag == safe_writes.etag("project", 7, same_instant)


def test_if_match() -> None:
    tag = safe_writes.etag("task", 1, T0)
    other = safe_writes.etag("task", 1, T0 + timedelta(seconds=1))
    assert safe_writes.if_match_satisfied(None, tag)
    assert safe_writes.if_match_satisfied("", tag)
    assert safe_writes.if_match_satisfied(tag, tag)
    assert safe_writes.if_match_satisfied("W/" + tag, tag)
    assert safe_writes.if_match_satisfied(f"{other}, {tag}", tag)
    assert safe_writes.if_match_satisfied("*", tag)
    assert not safe_writes.if_match_satisfied(other, tag)
    assert not safe_writes.if_match_satisfied('"garbage"', tag)


def test_request_hash_is_canonical_and_covers_every_part() -> None:
    base = safe_writes.request_hash("POST", "/api/projects", "", {"a": 1, "b": 2})
    assert base == safe_writes.request_hash("post", "/api/projects", "", {"b": 2, "a": 1})
    assert base != safe_writes.request_hash("POST", "/api/projects", "", {"a": 1, "b": 3})
    assert base != safe_writes.request_hash("POST", "/api/projects/1/members", "", {"a": 1, "b": 2})
    assert base != safe_writes.request_hash("POST", "/api/projects", "x=1", {"a": 1, "b": 2})
    assert base != safe_writes.request_hash("PUT", "/api/projects", "", {"a": 1, "b": 2})
