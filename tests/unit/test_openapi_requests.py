"""What the OpenAPI document promises about requests, checked against the server's own
validation (the marshmallow schemas) without a server: every request body has an example the
server accepts as it is, every string a request carries declares that U+0000 is refused, and
the member-create rule "exactly one of user_id / agent_id" is a ``oneOf`` that agrees with the
server's rule."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from taskflow_cli.stack import all_in_one
from taskflow_core.config import Settings
from taskflow_core.errors import BadRequest
from taskflow_core.openapi import build_spec
from taskflow_core.routing import Operation, Route

SETTINGS = Settings(database_url="postgresql://nobody@127.0.0.1:1/none")


@pytest.fixture(scope="module")
def routes() -> list[Route]:
    # The whole API, as `taskflow serve all` and the gateway publish it (nothing is started).
    found: list[Route] = []
    seen: set[str] = set()
    for app in all_in_one(SETTINGS).apps.values():
        found += [r for r in app.routes if not (r.path in seen or seen.add(r.path))]  # type: ignore[func-returns-value]
    return found


@pytest.fixture(scope="module")
def document(routes: list[Route]) -> dict[str, Any]:
    return build_spec("TaskFlow API", "0", routes)


def request_operations(routes: list[Route]) -> Iterator[tuple[str, Operation]]:
    for route in routes:
        if route.internal:
            continue
        for op in route.operations:
            if op.request is not None:
                yield route.path, op


def test_every_request_body_has_an_example_the_server_accepts(
    routes: list[Route], document: dict[str, Any]
) -> None:
    checked = 0
    for path, op in request_operations(routes):
        media = document["paths"][path][op.method.lower()]["requestBody"]["content"]
        example = media["application/json"].get("example")
        assert example is not None, f"{op.method} {path}: no request-body example"
        schema = op.request() if isinstance(op.request, type) else op.request
        schema.load(example)  # a ValidationError here would be Swagger's 422
        checked += 1
    assert checked >= 10


def test_examples_use_no_huge_ids(routes: list[Route], document: dict[str, Any]) -> None:
    """Swagger UI's generated sample put 9223372036854776000 in ids; an example names small,
    plausible ids or none."""
    for path, op in request_operations(routes):
        media = document["paths"][path][op.method.lower()]["requestBody"]["content"]
        example = media["application/json"]["example"]
        for key, value in example.items():
            if key.endswith("_id") and isinstance(value, int):
                assert 0 < value < 10_000, (op.operation_id, key, value)


def string_schemas(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, schema) of every string schema a request can carry."""
    components = document["components"]["schemas"]
    seen: set[str] = set()

    def walk(schema: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if isinstance(schema, list):
            for i, item in enumerate(schema):
                yield from walk(item, f"{where}[{i}]")
            return
        if not isinstance(schema, dict):
            return
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[1]
            if name not in seen:
                seen.add(name)
                yield from walk(components[name], name)
            return
        types = schema.get("type")
        if types == "string" or (isinstance(types, list) and "string" in types):
            yield where, schema
        for key in ("properties",):
            for name, sub in (schema.get(key) or {}).items():
                yield from walk(sub, f"{where}.{name}")
        for key in ("items", "additionalProperties", "if", "then", "else"):
            yield from walk(schema.get(key), f"{where}/{key}")
        for key in ("allOf", "anyOf", "oneOf"):
            yield from walk(schema.get(key), f"{where}/{key}")

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                yield from walk(parameter.get("schema"), f"{label} {parameter['name']}")
            for media in operation.get("requestBody", {}).get("content", {}).values():
                yield from walk(media["schema"], label)


def test_every_request_string_declares_that_nul_is_refused(document: dict[str, Any]) -> None:
    found = list(string_schemas(document))
    assert len(found) > 20
    for where, schema in found:
        assert {"enum", "const", "format", "pattern"} & schema.keys(), where
        if "pattern" in schema:
            pattern = re.compile(schema["pattern"])
            for value in ("\x00", "a\x00", "\x00a", "ab\x00cd", "x" * 3 + "\x00"):
                assert not pattern.search(value), (where, schema["pattern"], value)


def test_patterns_generate_no_nul(document: dict[str, Any]) -> None:
    """What a generator derives from each published pattern (as schemathesis does with
    ``allow-x00``) never holds U+0000."""
    patterns = sorted({s["pattern"] for _, s in string_schemas(document) if "pattern" in s})
    assert patterns

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def check(data: st.DataObject) -> None:
        pattern = data.draw(st.sampled_from(patterns))
        value = data.draw(st.from_regex(pattern))
        assert "\x00" not in value, (pattern, value)

    check()


MEMBER_BODIES = [
    {"user_id": "alice"},
    {"agent_id": 3},
    {"user_id": "alice", "agent_id": None},
    {"user_id": None, "agent_id": 3},
    {"user_id": "", "agent_id": 3},
    {"user_id": "alice", "agent_id": 0},
    {},
    {"user_id": None, "agent_id": None},
    {"user_id": "", "agent_id": 0},
    {"user_id": "alice", "agent_id": 3},
]


@pytest.mark.parametrize("body", MEMBER_BODIES, ids=str)
def test_member_create_one_of_agrees_with_the_server(document: dict[str, Any], body: dict) -> None:
    from taskflow_tasks.members.rules import member_target
    from taskflow_tasks.members.schemas import MemberCreateSchema

    schema = {**document["components"]["schemas"]["MemberCreate"]}
    assert len(schema["oneOf"]) == 2
    validator = jsonschema.Draft202012Validator(schema)
    loaded = MemberCreateSchema().load(body)
    try:
        member_target(loaded["user_id"], loaded["agent_id"])
        accepted = True
    except BadRequest:
        accepted = False
    assert validator.is_valid(body) is accepted, body


def test_created_resources_link_to_the_operations_taking_their_id(
    document: dict[str, Any],
) -> None:
    """OpenAPI links, which generated clients and the stateful fuzzer follow."""

    def links(path: str, method: str) -> dict[str, Any]:
        return dict(document["paths"][path][method]["responses"]["201"]["links"])

    task = links("/api/projects/{project_id}/tasks", "post")
    assert task["getTask"] == {
        "operationId": "getTask",
        "parameters": {"task_id": "$response.body#/id"},
    }
    assert {"approveTask", "listTaskAuditEntries", "createSubtask"} <= task.keys()
    member = links("/api/projects/{project_id}/members", "post")
    assert member["removeProjectMember"]["parameters"] == {
        "member_id": "$response.body#/id",
        "project_id": "$request.path.project_id",
    }
    assert "getAgent" in links("/api/workers/agents", "post")
    assert "createTask" in links("/api/projects", "post")
    operation_ids = {
        op["operationId"] for item in document["paths"].values() for op in item.values()
    }
    for item in document["paths"].values():
        for op in item.values():
            for response in op["responses"].values():
                for link in response.get("links", {}).values():
                    assert link["operationId"] in operation_ids
