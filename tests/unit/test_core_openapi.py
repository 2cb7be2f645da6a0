"""Every projects/members/agents/workers operation is in the tasks service's OpenAPI document
with its request and response schemas, parameters, error responses and an example."""

from __future__ import annotations

import re

import pytest
from falcon import testing
from taskflow_core.config import Settings
from taskflow_tasks.app import create_app

OPERATIONS = {
    ("/api/projects", "get"): (200, (401, 422)),
    ("/api/projects", "post"): (201, (400, 401, 422)),
    ("/api/projects/{project_id}", "get"): (200, (401, 403, 404, 422)),
    ("/api/projects/{project_id}", "put"): (200, (401, 403, 404, 412, 422)),
    ("/api/projects/{project_id}", "delete"): (200, (400, 401, 403, 404, 412, 422)),
    ("/api/members/search", "get"): (200, (401, 403, 404, 422)),
    ("/api/projects/{project_id}/members", "get"): (200, (401, 403, 404, 422)),
    ("/api/projects/{project_id}/members", "post"): (201, (400, 401, 403, 404, 422)),
    ("/api/projects/{project_id}/members/{member_id}", "delete"): (200, (400, 403, 404, 422)),
    ("/api/workers/agents", "get"): (200, (401, 422)),
    ("/api/workers/agents", "post"): (201, (400, 401, 422)),
    ("/api/workers/agents/{agent_id}", "get"): (200, (401, 404, 422)),
    ("/api/workers/agents/{agent_id}", "put"): (200, (401, 404, 422)),
    ("/api/workers/agents/{agent_id}", "delete"): (200, (400, 401, 404, 409, 422)),
    ("/api/workers", "get"): (200, (401, 403, 502)),
}


@pytest.fixture(scope="module")
def spec() -> dict:
    # The document is built from the route table; no database is reached for it.
    app = create_app(Settings(database_url="postgresql://nobody@127.0.0.1:1/none"))
    document: dict = testing.TestClient(app).simulate_get("/openapi.json").json
    return document


@pytest.mark.parametrize(("path", "method"), sorted(OPERATIONS))
def test_operation_is_documented(spec: dict, path: str, method: str) -> None:
    status, errors = OPERATIONS[(path, method)]
    op = spec["paths"][path][method]
    assert op["summary"] and op["tags"]
    response = op["responses"][str(status)]
    assert "example" in response["content"]["application/json"]
    for code in errors:
        assert str(code) in op["responses"], code
    assert op["security"] == [{"bearerAuth": []}]
    if method in ("post", "put"):
        assert op["requestBody"]["content"]["application/json"]["schema"]
    names = {p.get("name") for p in op.get("parameters", [])}
    for part in path.split("/"):
        if part.startswith("{"):
            assert part.strip("{}") in names


def test_write_headers_are_documented(spec: dict) -> None:
    def headers(path: str, method: str) -> set[str]:
        params = spec["paths"][path][method].get("parameters", [])
        return {p["name"] for p in params if p.get("in") == "header"}

    assert "Idempotency-Key" in headers("/api/projects", "post")
    assert "If-Match" in headers("/api/projects/{project_id}", "put")
    assert "If-Match" in headers("/api/projects/{project_id}", "delete")


def test_idempotency_key_is_documented_as_enforced(spec: dict) -> None:
    params = spec["paths"]["/api/projects"]["post"]["parameters"]
    (key,) = [p for p in params if p["name"] == "Idempotency-Key"]
    schema = key["schema"]
    assert schema["type"] == "string"
    assert (schema["minLength"], schema["maxLength"]) == (1, 255)
    pattern = re.compile(schema["pattern"])
    for accepted in ("k", "a key with spaces ~!", "x" * 255):
        assert pattern.search(accepted)
    for refused in ("", " lead", "trail ", "café", "tab\there"):
        assert not pattern.search(refused)
