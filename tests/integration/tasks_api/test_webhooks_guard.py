"""Webhook SSRF guard and the disabling of an endpoint that keeps failing (issue 18), with the
production default WEBHOOK_ALLOW_PRIVATE=false."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from tests.conftest import StartService
from tests.integration.tasks_api.conftest import MakeUser, Outbox
from tests.support.issuer import TestIssuer
from tests.support.receiver import Receiver


@pytest.fixture
def tasks_url(start_service: StartService, db_url: str, issuer: TestIssuer) -> str:
    return start_service(
        "tasks",
        DATABASE_URL=db_url,
        SSO_URL=issuer.url,
        EVENTS_POLL_INTERVAL="0.1",
        WEBHOOK_BACKOFF_BASE="0.2",
        WEBHOOK_BACKOFF_MAX="0.5",
        WEBHOOK_DISABLE_AFTER_DAYS="0.00003",  # about 2.6 s
    ).url


REFUSED = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://10.1.2.3/hook",
    "http://192.168.1.10/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "http://user:pw@example.com/hook",
]


def test_private_addresses_are_refused(make_user: MakeUser) -> None:
    alice = make_user()
    pid = alice.new_project()
    for url in REFUSED:
        resp = alice.post(f"/api/projects/{pid}/webhooks", {"url": url})
        assert resp.status_code == 422, (url, resp.text)
        assert resp.json()["detail"][0]["loc"] == ["body", "url"], url
    hook = alice.post(f"/api/projects/{pid}/webhooks", {"url": "http://127.0.0.1/x"})
    assert "loopback" in hook.text and "WEBHOOK_ALLOW_PRIVATE" in hook.text
    assert alice.get(f"/api/projects/{pid}/webhooks").json() == []


def test_checked_again_at_delivery_and_disabled_after_failing_too_long(
    make_user: MakeUser, db: psycopg.Connection[dict[str, Any]], outbox: Outbox
) -> None:
    alice = make_user()
    pid = alice.new_project()
    with Receiver() as receiver:
        # Registered while its name resolved to a public address; now it points inside.
        row = db.execute(
            "INSERT INTO tasks.webhooks (project_id, url, events, secret, created_by_id)"
            " VALUES (%s, %s, %s, %s, 0) RETURNING id",
            (pid, receiver.url, ["task.created"], "whsec_" + "A" * 44),
        ).fetchone()
        assert row is not None
        outbox.start()
        alice.task(pid, title="Not for the inside")
        item = f"/api/projects/{pid}/webhooks/{row['id']}"
        deadline = time.monotonic() + 30
        while alice.get(item).json()["active"] and time.monotonic() < deadline:
            time.sleep(0.2)
        read = alice.get(item).json()
        assert receiver.received == []
    assert read["active"] is False and "failing since" in read["disabled_reason"]
    deliveries = alice.get(f"{item}/deliveries").json()
    assert deliveries[0]["attempts"] >= 2
    assert "loopback" in deliveries[0]["last_error"]
    audit = [e for e in outbox.new() if e["entity_type"] == "webhook"]
    assert [(e["entity_id"], e["action"], e["actor_type"]) for e in audit] == [
        (row["id"], "disabled", "system")
    ]
