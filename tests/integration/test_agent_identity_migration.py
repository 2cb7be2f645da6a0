"""Migration 0013 (agents found per tenant, JWT agents per person and OAuth client) on a
database that already holds agents: an API-key agent stays the same worker for its key; the
agent that one shared OAuth client's tokens all mapped to is no longer anyone's."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from taskflow_cli.stack import SERVICES
from taskflow_core.migrations import apply_migrations, migration_files

from tests.conftest import StartService
from tests.integration.auth.sso_stand_in import register_api_key
from tests.support.issuer import TestIssuer
from tests.support.postgres import create_database, drop_database

SECRET = "agent-migration-test-service-secret-0123456789"
BEFORE = "0013"  # the migration under test


@pytest.fixture
def old_database(pg_admin_url: str) -> Iterator[str]:
    """A database migrated up to, not including, 0013 (every other service fully)."""
    url = create_database(pg_admin_url)
    tasks = SERVICES["tasks"]
    with psycopg.connect(url, autocommit=False) as conn, conn.transaction():
        conn.execute('CREATE SCHEMA "tasks"')
        conn.execute(
            'CREATE TABLE "tasks".schema_migrations (version text PRIMARY KEY,'
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, sql in migration_files(tasks.package):
            if version >= BEFORE:
                break
            conn.execute('SET LOCAL search_path TO "tasks", public')
            conn.execute(sql)  # type: ignore[arg-type]
            conn.execute('INSERT INTO "tasks".schema_migrations VALUES (%s)', (version,))
    for name, spec in SERVICES.items():
        if name != "tasks":
            apply_migrations(url, spec.schema, spec.package)
    yield url
    drop_database(pg_admin_url, url)


def test_existing_agents_after_the_migration(
    old_database: str, issuer: TestIssuer, start_service: StartService
) -> None:
    tenant = f"org-{uuid.uuid4().hex[:8]}"
    owner = f"owner-{uuid.uuid4().hex[:8]}"
    key = register_api_key(issuer, owner, name="Old key bot", organizations=[tenant])
    key_id = issuer.api_keys[key]["id"]
    with psycopg.connect(old_database, autocommit=True) as conn:
        human = conn.execute(
            "INSERT INTO tasks.workers (handle, name, type, user_id, tenant_id)"
            " VALUES ('@owner-old', 'Owner', 'human', %s, %s) RETURNING id",
            (owner, tenant),
        ).fetchone()
        key_agent, shared_agent = (
            conn.execute(
                "INSERT INTO tasks.workers (handle, name, type, api_key_id, tenant_id,"
                " agent_type) VALUES (%s, %s, 'agent', %s, %s, 'custom') RETURNING id",
                (handle, handle, api_key_id, tenant),
            ).fetchone()
            for handle, api_key_id in (("@old-key-bot", key_id), ("@shared-mcp", "shared-mcp"))
        )
        assert human and key_agent and shared_agent
        project = conn.execute(
            "INSERT INTO tasks.projects (tenant_id, slug, name, owner_id, owner_worker_id)"
            " VALUES (%s, 'old-work', 'Old work', %s, %s) RETURNING id",
            (tenant, owner, human[0]),
        ).fetchone()
        assert project
        for worker in (human[0], key_agent[0], shared_agent[0]):
            conn.execute(
                "INSERT INTO tasks.project_members (project_id, worker_id, role)"
                " VALUES (%s, %s, %s)",
                (project[0], worker, "owner" if worker == human[0] else "member"),
            )
    assert apply_migrations(old_database, "tasks", "taskflow_tasks")[0].startswith(BEFORE)
    env = {"DATABASE_URL": old_database, "SSO_URL": issuer.url, "SERVICE_SECRET": SECRET}
    verifier = start_service("auth-verifier", **env)
    tasks = start_service("tasks", AUTH_VERIFIER_URL=verifier.url, **env)

    def projects(token: str) -> set[str]:
        # A tf_ key costs the verifier two SSO calls; on a loaded CI machine one can time out
        # (503 "Authentication service unavailable"), and a client retries. Identity is what
        # this test is about, so a transient 503 is retried, never accepted as the answer.
        for _ in range(3):
            answer = httpx.get(
                f"{tasks.url}/api/projects",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            if answer.status_code != 503:
                break
            time.sleep(1)
        assert answer.status_code == 200, answer.text
        return {p["slug"] for p in answer.json()}

    # The key's agent is the worker it always was: it still works in the old project.
    assert projects(key) == {"old-work"}
    # An agent token of the shared client is now its holder's own agent, not the old one.
    agent_token = issuer.token(owner, tenant_id=tenant, actor_type="agent", azp="shared-mcp")
    assert projects(agent_token) == set()
    with psycopg.connect(old_database, autocommit=True) as conn:
        agents = conn.execute(
            "SELECT api_key_id, agent_sub, agent_client_id FROM tasks.workers"
            " WHERE type = 'agent' ORDER BY id"
        ).fetchall()
    assert agents == [(key_id, None, None), ("shared-mcp", None, None), (None, owner, "shared-mcp")]
