"""Details are hashed as jsonb will give them back: a batch mixing documents with and without
floats (only those make the trip through PostgreSQL) extends a chain that verifies."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import psycopg
from taskflow_core.auth.service_tokens import ServiceCredentials
from taskflow_core.config import Settings

from .conftest import AuditStack
from .test_tamper_evidence import run_verify

DETAILS: list[dict[str, Any]] = [
    {"before": {"status": "pending"}, "after": {"status": "done"}, "n": 3},
    {"big": 10**30, "neg": -7, "flag": True, "none": None, "list": [1, [2, {"é": "\u2028"}]]},
    {"spelled": 1e16, "tiny": 5e-324, "ratio": 0.1 + 0.2, "whole": 5.0, "neg_zero": -0.0},
    {"zz": 1, "a": 2, "mm": {"bbb": 1, "c": [1.5, 2]}},
    {},
]


def test_mixed_batch_verifies(
    stack: AuditStack, db: psycopg.Connection[dict[str, Any]], db_url: str
) -> None:
    stack.start_audit()
    token = ServiceCredentials(Settings(service_secret=stack.secret), "tasks").token_for("audit")
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "tenant_id": "tenant-a",
            "project_id": 1,
            "entity_type": "task",
            "entity_id": n,
            "action": "updated",
            "actor_type": "human",
            "details": details,
            "created_at": "2026-02-03T04:05:06.000001+00:00",
        }
        for n, details in enumerate(DETAILS * 3)
    ]
    resp = httpx.post(
        f"{stack.audit_url}/internal/audit/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["stored"] == len(events)
    report = json.loads(run_verify(db_url, "--json").stdout)
    assert report["ok"] is True and report["checked"] == len(events), report
    stored = db.execute("SELECT details FROM audit.entries ORDER BY id LIMIT 1").fetchone()
    assert stored is not None and stored["details"] == DETAILS[0]
