"""Route tables: one declaration per route serves Falcon, OpenAPI and the gateway checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partialmethod
from typing import Any

from marshmallow import Schema

# JSON Schemas of request headers named in ``Operation.headers`` (default: any string).
# The module that enforces a header registers its exact constraints here, so the document
# promises what the server accepts.
HEADER_SCHEMAS: dict[str, dict[str, Any]] = {}


def document_header(name: str, schema: dict[str, Any]) -> None:
    """Record the JSON Schema of request header ``name`` for every operation naming it."""
    HEADER_SCHEMAS[name] = schema


def header_schema(name: str) -> dict[str, Any]:
    """The documented JSON Schema of request header ``name``."""
    return dict(HEADER_SCHEMAS.get(name, {"type": "string"}))


@dataclass(frozen=True)
class Operation:
    """One HTTP method on a route, as documented in OpenAPI.

    ``operation_id`` is the operation's OpenAPI ``operationId``: the function name a generated
    client gives it (``createTask``), so it is camelCase, unique across every service's
    document, and never changes once published.

    ``creates`` names the path parameter whose value is the ``id`` of what the operation
    answers (``"task_id"`` for createTask): the document then links it to every operation
    taking that parameter (OpenAPI ``links``, which clients and stateful fuzzers follow)."""

    method: str
    summary: str
    tag: str
    response: type[Schema] | Schema | None = None
    status: int = 200
    many: bool = False
    request: type[Schema] | Schema | None = None
    query: type[Schema] | None = None
    errors: tuple[int, ...] = ()
    public: bool = False
    example: dict[str, Any] | None = None
    description: str | None = None
    headers: tuple[str, ...] = ()
    operation_id: str | None = None
    creates: str | None = None


class OperationFamily:
    """Declares the operations of one family of routes (one tag), each with the documentation
    the family shares (say, its response schema and example) unless the operation says
    otherwise: ``family.get("getProject", "Get a project", "404 outside your tenant.")``."""

    def __init__(self, tag: str, **shared: Any) -> None:
        self.tag = tag
        self.shared = shared

    def operation(
        self,
        method: str,
        operation_id: str,
        summary: str,
        description: str | None = None,
        **docs: Any,
    ) -> Operation:
        docs = {**self.shared, **docs}
        return Operation(
            method, summary, self.tag, operation_id=operation_id, description=description, **docs
        )

    # family.get(operation_id, summary, description, **docs) and so on, one per method.
    get = partialmethod(operation, "GET")
    post = partialmethod(operation, "POST")
    put = partialmethod(operation, "PUT")
    patch = partialmethod(operation, "PATCH")
    delete = partialmethod(operation, "DELETE")


@dataclass(frozen=True)
class Route:
    """A path template, the resource that serves it, and its documented operations."""

    path: str
    resource: object
    operations: tuple[Operation, ...] = field(default_factory=tuple)
    suffix: str | None = None
    internal: bool = False  # service-to-service only; never exposed through the gateway
    # OpenAPI 3.1 ``webhooks`` (name -> Path Item): requests this route makes the service send
    # (documentation only; see taskflow_tasks.webhooks).
    webhooks: Mapping[str, Any] = field(default_factory=dict)

    @property
    def public(self) -> bool:
        return all(op.public for op in self.operations)


def is_public_path(routes: list[Route], path: str) -> bool:
    """Whether ``path`` belongs to a route whose every operation is public (no token)."""
    return any(r.public and _matches(r.path, path) for r in routes)


def _matches(template: str, path: str) -> bool:
    t_parts = template.strip("/").split("/")
    p_parts = path.strip("/").split("/")
    if len(t_parts) != len(p_parts):
        return False
    return all(t.startswith("{") or t == p for t, p in zip(t_parts, p_parts, strict=True))
