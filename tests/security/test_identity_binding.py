"""OWASP API2:2023 Broken Authentication, the binding side: a verified credential names exactly
one worker, in one tenant its holder belongs to. Agent tokens of different people are different
workers even when they share an OAuth client; production refuses tokens that name no tenant; an
imported CLI human is claimed only by a verified, matching email (or ``import-cli --user``); a
``tf_`` API key acts only in an organisation its owner is a member of at the SSO."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from taskflow_core.auth.service_tokens import ServiceCredentials
from taskflow_core.config import Settings

from tests.conftest import StartService
from tests.integration.auth.sso_stand_in import register_api_key
from tests.integration.importer.cli_data import CliSimulation
from tests.integration.importer.conftest import run_import
from tests.reliability.stack import (
    SERVICE_SECRET,
    Stack,
    User,
    admin_connection,
    bearer,
    create_project,
    create_task,
    new_user,
    running_stack,
)
from tests.security.conftest import World
from tests.support.issuer import TestIssuer

AUDIENCE = "taskflow-api"
NO_TENANT = "tenant_id"  # what every refusal of a tenant-less token names


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def agent_token(issuer: TestIssuer, user: User, client: str, name: str) -> str:
    """An agent token of ``user`` issued to the OAuth client ``client`` (``azp``)."""
    return issuer.token(
        user.sub,
        tenant_id=user.tenant,
        actor_type="agent",
        azp=client,
        client_name=name,
        expires_in=3600,
    )


def agents_named(api: httpx.Client, name: str) -> list[dict[str, Any]]:
    listed = api.get("/api/workers/agents", params={"limit": 100})
    assert listed.status_code == 200, listed.text
    return [a for a in listed.json() if a["name"] == name]


# Finding 1: agents of one OAuth client ---------------------------------------------------------
def test_agent_tokens_sharing_an_oauth_client_are_different_workers(
    world: World, issuer: TestIssuer
) -> None:
    """Alice's agent (MCP client C) works in alice's private project. Eve, same tenant, signs
    her own agent in through the same client C: it must not be alice's agent worker, so it
    reads neither the project's tasks nor its history. Mallory's (another tenant) neither."""
    client, name = unique("shared-mcp"), unique("Shared MCP")
    with world.alice.client(world.tasks_url) as alice:
        project = create_project(alice, description="alice's private work")
        task = create_task(alice, project["id"], title="alice's agent task")
    alice_agent = agent_token(issuer, world.alice, client, name)
    with httpx.Client(base_url=world.tasks_url, headers=bearer(alice_agent), timeout=15) as api:
        assert api.get("/api/workers/agents").status_code == 200  # provisions alice's agent
    with world.alice.client(world.tasks_url) as alice:
        (agent,) = agents_named(alice, name)
        added = alice.post(f"/api/projects/{project['id']}/members", json={"agent_id": agent["id"]})
        assert added.status_code == 201, added.text
    with httpx.Client(base_url=world.tasks_url, headers=bearer(alice_agent), timeout=15) as api:
        own = api.get(f"/api/projects/{project['id']}/tasks")
        assert own.status_code == 200 and task["id"] in {t["id"] for t in own.json()}

    for person in (world.eve, world.mallory):
        token = agent_token(issuer, person, client, name)
        with httpx.Client(base_url=world.tasks_url, headers=bearer(token), timeout=15) as api:
            for path in (f"/api/projects/{project['id']}/tasks", f"/api/tasks/{task['id']}"):
                read = api.get(path)
                assert read.status_code in {403, 404}, (person.sub, path, read.text)
                assert "alice's agent task" not in read.text
            # Each person's agent is a worker of its own, in that person's tenant.
            assert len(agents_named(api, name)) == (2 if person is world.eve else 1)
        with httpx.Client(base_url=world.audit_url, headers=bearer(token), timeout=15) as audit:
            history = audit.get(f"/api/projects/{project['id']}/audit")
            assert history.status_code in {403, 404}, (person.sub, history.text)
    with world.alice.client(world.tasks_url) as alice:
        assert len(agents_named(alice, name)) == 2  # alice's and eve's, not one shared worker


# Finding 2: tokens without a tenant -------------------------------------------------------------
@pytest.fixture(scope="module")
def production(
    pg_admin_url: str,
    template_db: str,
    issuer: TestIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The three services with ENV=production (issuer and audience set, as production needs)."""
    with running_stack(
        pg_admin_url,
        template_db,
        issuer,
        tmp_path_factory.mktemp("production"),
        services=("tasks", "audit", "auth-verifier"),
        ENV="production",
        JWT_ISSUER=issuer.issuer,
        JWT_AUDIENCE=AUDIENCE,
    ) as stack:
        yield stack


def assert_no_tenant_refusal(response: httpx.Response, where: str) -> None:
    assert response.status_code == 401, (where, response.status_code, response.text)
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), where
    assert NO_TENANT in response.json()["error"], (where, response.text)


def test_production_refuses_tokens_without_a_tenant_claim(
    production: Stack, issuer: TestIssuer
) -> None:
    sub = unique("no-org")
    tenantless = {
        "no claim at all": issuer.token(sub, aud=AUDIENCE),
        "blank claims": issuer.token(sub, aud=AUDIENCE, tenant_id="  ", organization_ids=[]),
    }
    introspect_as = ServiceCredentials(Settings(service_secret=SERVICE_SECRET), "tasks")
    for what, token in tenantless.items():
        for service, path in (("tasks", "/api/projects"), ("audit", "/api/audit")):
            answer = httpx.get(production.url(service) + path, headers=bearer(token), timeout=15)
            assert_no_tenant_refusal(answer, f"{what}: {service}")
        verify = httpx.get(
            production.url("auth-verifier") + "/verify",
            headers={**bearer(token), "X-Original-URI": "/api/projects"},
            timeout=15,
        )
        assert_no_tenant_refusal(verify, f"{what}: /verify")
        introspected = httpx.post(
            production.url("auth-verifier") + "/introspect",
            json={"token": token},
            headers=bearer(introspect_as.token_for("auth-verifier")),
            timeout=15,
        )
        assert introspected.status_code == 200, introspected.text
        assert introspected.json()["active"] is False
        assert NO_TENANT in introspected.json()["error"], introspected.text
    with admin_connection(production.db_url) as conn:
        row = conn.execute("SELECT count(*) FROM tasks.workers WHERE user_id = %s", (sub,))
        assert row.fetchone() == (0,)  # refused before anything was provisioned
    # Control: the same person with an organisation is served everywhere.
    named = issuer.token(sub, aud=AUDIENCE, organization_ids=[unique("org")])
    for service, path in (("tasks", "/api/projects"), ("audit", "/api/audit")):
        answer = httpx.get(production.url(service) + path, headers=bearer(named), timeout=15)
        assert answer.status_code == 200, (service, answer.text)


def test_development_keeps_the_default_tenant_for_tokens_without_one(
    world: World, issuer: TestIssuer
) -> None:
    token = issuer.token(unique("dev-user"))
    with httpx.Client(base_url=world.tasks_url, headers=bearer(token), timeout=15) as api:
        projects = api.get("/api/projects")
    assert projects.status_code == 200, projects.text
    assert {p["tenant_id"] for p in projects.json()} == {"taskflow-default-org-id"}


# Finding 3: imported humans -----------------------------------------------------------------
def cli_folder(root: Path, me: str, human: str) -> Path:
    """A CLI folder: ``me`` (the importing owner) and ``human``, both in project "website"."""
    sim = CliSimulation(current_user=me)
    sim.human(me, "Owner")
    sim.human(human, "Imported Person")
    sim.project("website", "Website")
    task = sim.task(me, "website", "Launch")
    sim.delegate(me, task, human)
    return sim.write(root)


def test_an_imported_human_is_claimed_only_by_a_verified_matching_email(
    tmp_path: Path, db_url: str, start_service: StartService, issuer: TestIssuer
) -> None:
    """``import-cli`` writes a CLI human as an unclaimed worker. A first SSO login claims it only
    with ``email_verified: true`` and the email recorded by ``--email``; never by the handle its
    email would give; ``--user @handle=SUB`` binds it to one subject outright."""
    recorded = "bob.builder@corp.test"
    imports = {  # (tenant, CLI handle, extra options)
        "no email recorded": (unique("t-handle"), "@bob", []),
        "email recorded": (unique("t-email"), "@bobby", ["--email", f"@bobby={recorded}"]),
        "subject mapped": (unique("t-user"), "@robert", ["--user", "@robert=bob-mapped-sub"]),
    }
    for i, (tenant, handle, extra) in enumerate(imports.values()):
        me = f"@importer-{i}-{uuid.uuid4().hex[:6]}"
        folder = cli_folder(tmp_path / str(i), me, handle)
        run = run_import(
            db_url, folder, "--tenant", tenant, "--owner", unique("owner"),
            "--utc-offset", "+00:00", "--no-progress", *extra,
        )  # fmt: skip
        assert run.code == 0, run.err
    tasks = start_service("tasks", DATABASE_URL=db_url, SSO_URL=issuer.url)

    def sees_the_imported_project(tenant: str, sub: str, **claims: Any) -> bool:
        token = issuer.token(sub, tenant_id=tenant, name="Someone", **claims)
        with httpx.Client(base_url=tasks.url, headers=bearer(token), timeout=15) as api:
            projects = api.get("/api/projects", params={"limit": 100})
        assert projects.status_code == 200, projects.text
        return "website" in {p["slug"] for p in projects.json()}

    handle_tenant = imports["no email recorded"][0]
    # Anyone whose email starts with "bob@" derives the handle @bob: that claims nothing.
    assert not sees_the_imported_project(
        handle_tenant, unique("mallory"), email="bob@attacker.test", email_verified=True
    )
    email_tenant = imports["email recorded"][0]
    # The recorded email, but the IdP does not say it is verified (absent, false, or a string).
    for verified in (None, False, "true"):
        assert not sees_the_imported_project(
            email_tenant, unique("unverified"), email=recorded, email_verified=verified
        )
    # Another verified email (same handle), or the recorded one in another tenant: nothing.
    assert not sees_the_imported_project(
        email_tenant, unique("other"), email="bobby@corp.test", email_verified=True
    )
    assert not sees_the_imported_project(
        handle_tenant, unique("elsewhere"), email=recorded, email_verified=True
    )
    # The verified, recorded email claims it; --user binds it to its subject.
    assert sees_the_imported_project(
        email_tenant, "bob-verified", email=recorded, email_verified=True
    )
    assert sees_the_imported_project(imports["subject mapped"][0], "bob-mapped-sub")
    with admin_connection(db_url) as conn:
        unclaimed = conn.execute(
            "SELECT tenant_id, handle FROM tasks.workers WHERE starts_with(user_id, 'cli-import:')"
        ).fetchall()
    assert unclaimed == [(handle_tenant, "@bob")]  # only the email-less import is unclaimed


# tf_ API keys: the owner's organisation ---------------------------------------------------------
def test_an_api_key_acts_only_in_an_organisation_of_its_owner(
    world: World, issuer: TestIssuer
) -> None:
    """The tenant of a ``tf_`` key comes from its owner's memberships at the SSO; the key's
    metadata (which its owner may write) can only pick one of those; a key the SSO cannot
    place is a 401 that says what is missing (never the default organisation)."""
    home, second, victim = unique("org-home"), unique("org-second"), unique("org-victim")
    owner = new_user(issuer, home)
    colleague = new_user(issuer, second)
    victim_user = new_user(issuer, victim)

    def call(key: str, service: str = "tasks", path: str = "/api/workers/agents") -> Any:
        return httpx.get(world.stack.url(service) + path, headers=bearer(key), timeout=15)

    def agent_names(user: User) -> set[str]:
        with user.client(world.tasks_url) as api:
            return {a["name"] for a in api.get("/api/workers/agents").json()}

    plain = register_api_key(issuer, owner.sub, name=unique("home-bot"), organizations=[home])
    chosen = register_api_key(
        issuer,
        owner.sub,
        name=unique("second-bot"),
        organizations=[home, second],
        metadata={"tenant_id": second},
    )
    for key in (plain, chosen):
        assert call(key).status_code == 200, call(key).text
        assert call(key, "audit", "/api/audit").status_code == 200
    assert issuer.api_keys[plain]["name"] in agent_names(owner)
    assert issuer.api_keys[chosen]["name"] in agent_names(colleague)
    assert issuer.api_keys[chosen]["name"] not in agent_names(owner)

    refused = {
        "a tenant its owner is not in": register_api_key(
            issuer, owner.sub, organizations=[home], metadata={"tenant_id": victim}
        ),
        "no organisation list at the SSO": register_api_key(issuer, owner.sub),
        "several organisations, none chosen": register_api_key(
            issuer, owner.sub, organizations=[home, second]
        ),
        "an owner in no organisation": register_api_key(issuer, owner.sub, organizations=[]),
    }
    for what, key in refused.items():
        for service in ("tasks", "auth-verifier"):
            path = "/verify" if service == "auth-verifier" else "/api/projects"
            answer = call(key, service, path)
            assert answer.status_code == 401, (what, service, answer.text)
            message = answer.json()["error"]
            assert "API key" in message and ("organisation" in message or "tenant" in message), (
                what,
                message,
            )
    assert issuer.api_keys[refused["a tenant its owner is not in"]]["name"] not in agent_names(
        victim_user
    )
