"""Pure rules of events (issue 18): reminder timing (reference-api.md §5.3), signatures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from taskflow_tasks.events.reminders import plan
from taskflow_tasks.webhooks import rules

NOW = datetime(2031, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("left", "before", "hours"),
    [
        (timedelta(days=3), timedelta(hours=24), 24),
        (timedelta(hours=24, seconds=1), timedelta(hours=24), 24),
        (timedelta(hours=5), timedelta(hours=1), 1),
        (timedelta(minutes=30), timedelta(minutes=5), 0),
        (timedelta(minutes=3), timedelta(seconds=30), -1),
    ],
)
def test_reminder_timing(left: timedelta, before: timedelta, hours: int) -> None:
    assert plan(NOW + left, NOW) == (NOW + left - before, hours)


def test_no_reminder_within_a_minute_or_after_the_due_date() -> None:
    assert plan(NOW + timedelta(seconds=59), NOW) is None
    assert plan(NOW - timedelta(hours=1), NOW) is None


def test_signature_verifies_with_standardwebhooks() -> None:
    secret = rules.new_secret()
    body = b'{"specversion":"1.0"}'
    headers = rules.headers(secret, "msg_1", datetime.now(UTC), body)
    assert Webhook(secret).verify(body, headers) == {"specversion": "1.0"}


def test_backoff_grows_and_is_capped() -> None:
    assert 15 <= rules.backoff(1, 30, 3600) <= 30
    assert 1800 <= rules.backoff(20, 30, 3600) <= 3600


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "fe80::1", "::ffff:10.0.0.1",
     "100.64.0.1", "0.0.0.0", "fd00:ec2::254"],
)  # fmt: skip
def test_private_addresses_are_refused(address: str) -> None:
    assert rules.address_refusal(address) is not None


def test_public_addresses_are_allowed() -> None:
    assert rules.address_refusal("93.184.216.34") is None
    assert rules.address_refusal("2606:2800:220:1:248:1893:25c8:1946") is None


def test_openapi_documents_webhook_endpoints_and_delivery_format() -> None:
    from falcon import testing
    from taskflow_core.config import Settings
    from taskflow_tasks.app import create_app

    app = create_app(Settings(database_url="postgresql://nobody@127.0.0.1:1/none"))
    document = testing.TestClient(app).simulate_get("/openapi.json").json
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    assert set(paths["/api/projects/{project_id}/webhooks"]) == {"get", "post"}
    assert (
        "post"
        in paths[
            "/api/projects/{project_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"
        ]
    )
    delivery = document["webhooks"]["taskEvent"]["post"]
    headers = {p["name"] for p in delivery["parameters"]}
    assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    body = delivery["requestBody"]["content"]["application/cloudevents+json"]["schema"]
    assert "reminder.due" in body["properties"]["type"]["enum"]
