"""OpenAPI operationIds a generated client can use as function names (issue 16): every operation
of every service declares one, in camelCase, and no two operations share one, neither in a
service's own document nor in the merged document of the gateway and ``taskflow dev``."""

from __future__ import annotations

import re
from collections import Counter

import orjson
import pytest
from falcon import testing
from taskflow_cli.stack import SERVICES, all_in_one
from taskflow_core.config import Settings
from taskflow_core.routing import Route

CAMEL_CASE = re.compile(r"^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)*$")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # No database is reached; the dev issuer adds its /dev/jwks route, so it is covered too.
    return Settings(
        database_url="postgresql://nobody@127.0.0.1:1/none",
        dev_issuer=True,
        data_dir=tmp_path_factory.mktemp("dev-issuer"),
    )


def _routes(settings: Settings) -> dict[str, list[Route]]:
    return {name: spec.create_app(settings).routes for name, spec in SERVICES.items()}


def _document_ids(document: dict) -> list[str | None]:
    return [
        op.get("operationId")
        for path in document["paths"].values()
        for method, op in path.items()
        if method in METHODS
    ]


def test_every_declared_operation_has_a_camel_case_id(settings: Settings) -> None:
    """Internal routes too: they are documented for the services that call them."""
    missing = []
    malformed = []
    for service, routes in _routes(settings).items():
        for route in routes:
            for op in route.operations:
                where = f"{service} {op.method} {route.path}"
                if op.operation_id is None:
                    missing.append(where)
                elif not CAMEL_CASE.fullmatch(op.operation_id):
                    malformed.append(f"{where}: {op.operation_id}")
    assert missing == []
    assert malformed == []


def test_ids_are_unique_across_services(settings: Settings) -> None:
    """One id names one operation (a route every service serves, such as /health, is one)."""
    owners: dict[str, set[tuple[str, str]]] = {}
    for routes in _routes(settings).values():
        for route in routes:
            for op in route.operations:
                assert op.operation_id is not None
                owners.setdefault(op.operation_id, set()).add((op.method, route.path))
    shared = {op_id: where for op_id, where in owners.items() if len(where) > 1}
    assert shared == {}


def test_each_service_document_carries_its_ids(settings: Settings) -> None:
    for spec in SERVICES.values():
        document = testing.TestClient(spec.create_app(settings)).simulate_get("/openapi.json").json
        ids = _document_ids(document)
        assert None not in ids, spec.name
        assert [i for i, n in Counter(ids).items() if n > 1] == [], spec.name


def test_merged_document_ids_are_unique_and_name_the_client_functions(settings: Settings) -> None:
    """The all-in-one document (``taskflow dev``, and the gateway's ``/openapi.json``)."""
    document = orjson.loads(all_in_one(settings).openapi)
    ids = _document_ids(document)
    assert None not in ids
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    paths = document["paths"]
    assert paths["/api/projects/{project_id}/tasks"]["post"]["operationId"] == "createTask"
    assert paths["/api/projects/{project_id}/tasks"]["get"]["operationId"] == "listProjectTasks"
    assert paths["/api/tasks/{task_id}/approve"]["post"]["operationId"] == "approveTask"
    assert paths["/api/projects/{project_id}"]["get"]["operationId"] == "getProject"
    assert paths["/api/tasks/{task_id}/status"]["patch"]["operationId"] == "changeTaskStatus"
    assert paths["/api/projects/{project_id}/audit"]["get"]["operationId"] == (
        "listProjectAuditEntries"
    )
