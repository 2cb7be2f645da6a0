"""Property-based and stateful fuzzing of the whole API over real HTTP with schemathesis: against
`taskflow serve all` (one process: a stall anywhere shows) and through the nginx gateway in
front of the three split services.

The settings (tests/fuzz/schemathesis.toml and support.run_schemathesis): every phase, the
stateful one included (links inferred from the document and from Location headers); a new
random seed each run, in the report header, each test's output and failure message
(``FUZZ_SEED`` replays one); ``FUZZ_MAX_EXAMPLES`` examples per operation (50 by default);
NUL characters generated (every string that refuses them declares it with a pattern); every
default check, where schema-valid data may only be refused with a documented business-rule
answer (400, 409, 412, 401/403/404, 429). While the fuzzer runs, a watchdog polls /health every
second and fails the run on any answer slower than 2 s. A failure prints schemathesis' report
with a reproducing curl per finding; the whole output is kept in test-artifacts/fuzz-*.txt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.fuzz.support import (
    MAX_EXAMPLES,
    SEED,
    HealthWatchdog,
    failures_section,
    keep_output,
    replay_hint,
    run_schemathesis,
)
from tests.reliability.stack import User, create_project, create_task, new_user
from tests.support.invariants import rollup_mismatches
from tests.support.issuer import TestIssuer, generate_key
from tests.support.processes import ServeAll


@pytest.fixture(scope="module")
def serve_all(
    pg_admin_url: str,
    template_db: str,
    issuer: TestIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServeAll, User, str]]:
    """`taskflow serve all` on a database of its own (its URL third), with a seeded user's
    project and tasks."""
    from tests.support.postgres import create_database, drop_database

    url = create_database(pg_admin_url, template=template_db)
    log = tmp_path_factory.mktemp("fuzz-serve-all") / "serve-all.log"
    # No public DNS on the test machines: webhook URLs are not resolved (their SSRF refusals
    # have tests of their own in tests/integration/tasks_api).
    env = {
        "DATABASE_URL": url,
        "SSO_URL": issuer.url,
        "LOG_FORMAT": "json",
        "WEBHOOK_ALLOW_PRIVATE": "true",
    }
    server = ServeAll(env, log)
    try:
        server.start()
        user = new_user(issuer)
        seed_data(server.url, user)
        yield server, user, url
    finally:
        server.stop()
        drop_database(pg_admin_url, url)


def seed_data(base_url: str, user: User) -> None:
    """A project with a task and a subtask, so id-taking operations can hit real objects."""
    with user.client(base_url) as api:
        project = create_project(api)
        task = create_task(api, project["id"])
        made = api.post(f"/api/tasks/{task['id']}/subtasks", json={"title": "sub"})
        assert made.status_code == 201, made.text


CREDENTIALS = ["valid-token", "no-token", "invalid-token"]


def credential_headers(credential: str, user: User, issuer: TestIssuer) -> dict[str, str]:
    if credential == "valid-token":
        return {"Authorization": f"Bearer {user.token}"}
    if credential == "invalid-token":
        foreign = generate_key("RS256", kid="rs256-not-published")
        forged = issuer.token(user.sub, tenant_id=user.tenant, key=foreign)
        return {"Authorization": f"Bearer {forged}"}
    return {}


def fuzz(
    name: str, base_url: str, health_urls: list[str], headers: dict[str, str], report_dir: Path
) -> None:
    """One schemathesis run with the watchdog on; fails with both reports."""
    print(replay_hint())  # shown with -s, and in the captured output of a failure
    examples = MAX_EXAMPLES if "Authorization" in headers else max(5, MAX_EXAMPLES // 5)
    with HealthWatchdog(health_urls) as watchdog:
        result = run_schemathesis(base_url, headers, report_dir, examples)
    kept = keep_output(name, result)
    print(f"{name}: {watchdog.summary()}; schemathesis output in {kept}")
    problems = []
    if result.returncode != 0:
        problems.append(
            f"schemathesis found problems:\n{failures_section(result.stdout)[-30000:]}\n"
            f"{result.stderr[-3000:]}"
        )
    if watchdog.findings:
        problems.append("/health watchdog:\n" + "\n".join(watchdog.findings[:50]))
    assert not problems, f"{name} ({replay_hint()}):\n" + "\n\n".join(problems)


@pytest.mark.parametrize("credential", CREDENTIALS)
def test_fuzz_serve_all(
    credential: str,
    serve_all: tuple[ServeAll, User, str],
    issuer: TestIssuer,
    tmp_path: Path,
    record_property: pytest.RecordProperty,
) -> None:
    """The whole document of `taskflow serve all`, as a seeded user and without / with a
    forged token (those stop at the 401, so they need fewer examples). Whatever the fuzzer
    created, moved and deleted, every task's subtask roll-up still matches its subtasks."""
    server, user, db_url = serve_all
    record_property("fuzz_seed", SEED)
    headers = credential_headers(credential, user, issuer)
    try:
        fuzz(f"serve-all-{credential}", server.url, [server.url], headers, tmp_path)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- serve all log:\n{server.log_tail()}") from None
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert rollup_mismatches(conn) == [], replay_hint()


def test_fuzz_through_the_gateway(
    pg_admin_url: str,
    template_db: str,
    issuer: TestIssuer,
    tmp_path: Path,
    record_property: pytest.RecordProperty,
) -> None:
    """Through nginx (its merged /openapi.json) to the three split services, as a seeded user:
    the gateway adds the forward-auth hop, its own limits and its error pages, all of which must
    match the document. The watchdog polls each service's /health directly."""
    from tests.reliability.stack import running_gateway

    record_property("fuzz_seed", SEED)
    with running_gateway(pg_admin_url, template_db, issuer) as gateway:
        base_url = str(getattr(gateway, "url"))  # noqa: B009 - the e2e Stack has no stub types
        services = getattr(gateway, "services")  # noqa: B009
        user = new_user(issuer)
        seed_data(base_url, user)
        # nginx answers the gateway's own /health itself: the services' tell whether one stalls.
        health = [svc.url for svc in services.values()]
        headers = credential_headers("valid-token", user, issuer)
        try:
            fuzz("gateway", base_url, health, headers, tmp_path)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- logs:\n{gateway.diagnostics()}") from None  # type: ignore[attr-defined]
