"""ETag / If-Match and the request fingerprint of Idempotency-Key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from taskflow_tasks.writes import idempotency, preconditions

T0 = datetime(2025, 12, 31, 12, 0, 0, 123456, tzinfo=UTC)


def test_etag_changes_with_updated_at_and_ignores_the_zone_spelling() -> None:
    tag = preconditions.etag("project", 7, T0)
    assert tag.startswith('"') and tag.endswith('"')
    assert tag != preconditions.etag("project", 7, T0 + timedelta(microseconds=1))
    assert tag != preconditions.etag("task", 7, T0)
    same_instant = T0.astimezone(timezone(timedelta(hours=5)))
    assert tag == preconditions.etag("project", 7, same_instant)


def test_if_match() -> None:
    tag = preconditions.etag("task", 1, T0)
    other = preconditions.etag("task", 1, T0 + timedelta(seconds=1))
    assert preconditions.if_match_satisfied(None, tag)
    assert preconditions.if_match_satisfied("", tag)
    assert preconditions.if_match_satisfied(tag, tag)
    assert preconditions.if_match_satisfied("W/" + tag, tag)
    assert preconditions.if_match_satisfied(f"{other}, {tag}", tag)
    assert preconditions.if_match_satisfied("*", tag)
    assert not preconditions.if_match_satisfied(other, tag)
    assert not preconditions.if_match_satisfied('"garbage"', tag)


def test_request_hash_is_canonical_and_covers_every_part() -> None:
    base = idempotency.request_hash("POST", "/api/projects", "", {"a": 1, "b": 2})
    assert base == idempotency.request_hash("post", "/api/projects", "", {"b": 2, "a": 1})
    assert base != idempotency.request_hash("POST", "/api/projects", "", {"a": 1, "b": 3})
    assert base != idempotency.request_hash("POST", "/api/projects/1/members", "", {"a": 1, "b": 2})
    assert base != idempotency.request_hash("POST", "/api/projects", "x=1", {"a": 1, "b": 2})
    assert base != idempotency.request_hash("PUT", "/api/projects", "", {"a": 1, "b": 2})
