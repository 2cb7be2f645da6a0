"""A small world for the OWASP API tests: two tenants, an owner with objects of every kind, a
non-member in the owner's tenant and a stranger in another tenant, all over real HTTP."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.reliability.stack import (
    Stack,
    User,
    admin_connection,
    create_project,
    create_task,
    new_user,
    running_gateway,
    running_stack,
)
from tests.support.issuer import TestIssuer


@dataclass
class World:
    stack: Stack
    alice: User  # owner of everything below (tenant A)
    eve: User  # same tenant as alice, member of nothing of alice's
    mallory: User  # another tenant
    project: dict[str, Any]
    task: dict[str, Any]
    subtask: dict[str, Any]
    agent: dict[str, Any]
    member: dict[str, Any]  # the agent's membership row in alice's project
    mallory_project: dict[str, Any]
    webhook_id: int = 0
    delivery_id: int = 0

    @property
    def tasks_url(self) -> str:
        return self.stack.url("tasks")

    @property
    def audit_url(self) -> str:
        return self.stack.url("audit")

    def ids(self) -> dict[str, int]:
        return {
            "project_id": int(self.project["id"]),
            "task_id": int(self.task["id"]),
            "agent_id": int(self.agent["id"]),
            "member_id": int(self.member["id"]),
            "webhook_id": self.webhook_id,
            "delivery_id": self.delivery_id,
        }

    def outbox_count(self) -> int:
        with admin_connection(self.stack.db_url) as conn:
            row = conn.execute("SELECT count(*) FROM tasks.outbox").fetchone()
            return int(row[0]) if row else 0

    def wait_delivered(self, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        with admin_connection(self.stack.db_url) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT count(*) FROM tasks.outbox WHERE delivered_at IS NULL"
                ).fetchone()
                if row and row[0] == 0:
                    return
                time.sleep(0.3)


def build_world(stack: Stack, issuer: TestIssuer) -> World:
    tenant_a = f"org-a-{uuid.uuid4().hex[:6]}"
    alice = new_user(issuer, tenant_a)
    eve = new_user(issuer, tenant_a)
    mallory = new_user(issuer, f"org-m-{uuid.uuid4().hex[:6]}")
    issuer.org_members[tenant_a] = [
        {"userId": u.sub, "email": u.email, "name": u.sub, "role": "member"} for u in (alice, eve)
    ]
    issuer.org_members[mallory.tenant] = [
        {"userId": mallory.sub, "email": mallory.email, "name": mallory.sub, "role": "owner"}
    ]
    with alice.client(stack.url("tasks")) as api:
        project = create_project(api, description="alice's secret project")
        task = create_task(api, project["id"], title="alice's task", description="secret")
        sub = api.post(f"/api/tasks/{task['id']}/subtasks", json={"title": "alice's subtask"})
        assert sub.status_code == 201, sub.text
        handle = f"@agent-{uuid.uuid4().hex[:8]}"
        agent = api.post(
            "/api/workers/agents", json={"handle": handle, "name": "A", "agent_type": "claude"}
        )
        assert agent.status_code == 201, agent.text
        member = api.post(
            f"/api/projects/{project['id']}/members", json={"agent_id": agent.json()["id"]}
        )
        assert member.status_code == 201, member.text
    with eve.client(stack.url("tasks")) as api:
        assert api.get("/api/projects").status_code == 200  # eve is provisioned
    with mallory.client(stack.url("tasks")) as api:
        mallory_project = create_project(api, description="mallory's own")
        create_task(api, mallory_project["id"], title="mallory's task")
    webhook_id, delivery_id = _webhook_of(stack, int(project["id"]))
    return World(
        webhook_id=webhook_id,
        delivery_id=delivery_id,
        stack=stack,
        alice=alice,
        eve=eve,
        mallory=mallory,
        project=project,
        task=task,
        subtask=sub.json(),
        agent=agent.json(),
        member=member.json(),
        mallory_project=mallory_project,
    )


def _webhook_of(stack: Stack, project_id: int) -> tuple[int, int]:
    """A webhook of alice's project and one (settled) delivery, written directly: the stack
    refuses private URLs and may not resolve public names."""
    with admin_connection(stack.db_url) as conn:
        hook = conn.execute(
            "INSERT INTO tasks.webhooks (project_id, url, events, secret, created_by_id)"
            " VALUES (%s, 'https://hooks.example.com/alice', '{task.created}', %s, 0)"
            " RETURNING id",
            (project_id, "whsec_" + "A" * 44),
        ).fetchone()
        assert hook is not None
        delivery = conn.execute(
            "INSERT INTO tasks.webhook_deliveries (webhook_id, event_id, event_type, order_key,"
            " body, message_id, state, committed_at) VALUES (%s, 'e1', 'task.created', 't',"
            " '{}', 'msg_1', 'delivered', now()) RETURNING id",
            (hook[0],),
        ).fetchone()
        assert delivery is not None
        conn.commit()
    return int(hook[0]), int(delivery[0])


@pytest.fixture(scope="session")
def world(
    pg_admin_url: str,
    template_db: str,
    issuer: TestIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    """One world for the whole security suite (the attacks must not change it anyway)."""
    with running_stack(
        pg_admin_url,
        template_db,
        issuer,
        tmp_path_factory.mktemp("security"),
        services=("tasks", "audit", "auth-verifier"),
    ) as stack:
        yield build_world(stack, issuer)


@pytest.fixture(scope="session")
def gateway(issuer: TestIssuer, pg_admin_url: str, template_db: str) -> Iterator[Any]:
    """The real nginx gateway in front of the three services (tests/e2e's stack)."""
    with running_gateway(pg_admin_url, template_db, issuer) as stack:
        yield stack
