"""OpenAPI 3.1 from the route tables (apispec + marshmallow), Swagger UI and ReDoc from
packaged files, so ``/docs`` works without a CDN."""

from __future__ import annotations

import re
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import falcon
import falcon.asgi
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from .auth.dev_issuer import DEV_TOKEN_LIFETIME
from .errors import JSON_MEDIA_TYPE, error_body
from .routing import Operation, Route, header_schema
from .schemas.base import NUL_FREE_PATTERN

API_TITLE = "TaskFlow API"
# What /docs and /redoc open with (OpenAPI ``info.description``, CommonMark). Every statement
# here is a behaviour some test checks; change them together.
API_INTRODUCTION = f"""\
TaskFlow's projects, members, agents, tasks and their audit trail, for the web dashboard,
the CLI, the MCP server and your own scripts. JSON in and out; timestamps in UTC with an offset.

## Getting a token

Every `/api` operation needs `Authorization: Bearer <token>` (in Swagger UI, `/docs`: the
**Authorize** button; paste the token itself, without `Bearer` or angle brackets). A missing,
malformed, expired or unknown token is a 401 with a `WWW-Authenticate: Bearer` header and a
message saying which.

- **Local stack** (`taskflow dev`): its start-up banner prints a token for the dev user
  (`export TOKEN=…`, valid {DEV_TOKEN_LIFETIME // 3600} h). Mint more with
  `taskflow token --sub alice` (`--email`, `--name`, `--tenant`, `--agent` for an agent,
  `--expires 15m`) run from the stack's folder (the dev issuer's key is in its
  `.taskflow-dev/`).
- **Production**: a credential from the SSO (Better Auth). The dashboard sends the signed-in
  user's **id_token** (a JWT, verified against the SSO's published keys); agents send a
  **`tf_` API key** created at the SSO, which acts in an organisation its owner belongs to;
  opaque OAuth access tokens are checked at the SSO's userinfo endpoint.

## Errors

Every error has one JSON shape: `error`, `detail` and `status_code`, which the existing
clients read, plus RFC 9457's `type`, `title` and `status`:

```json
{{"error": "Task not found", "detail": "Task not found",
 "status_code": 404, "type": "about:blank",
 "title": "Not Found", "status": 404}}
```

- **422**: the request does not validate. `detail` lists every problem as
  `{{"loc": ["body", "title"], "msg": "…", "type": "value_error"}}` (`loc` starts with `body`,
  `query`, `path` or `header`) and `error` names the first. Unknown body fields are refused,
  not ignored. Malformed JSON is a 422 whose `error` says where (line and column) and whose
  `loc` holds the character offset.
- **415**: a body that is not `{JSON_MEDIA_TYPE}`, such as a form (`curl -d` sends
  `application/x-www-form-urlencoded` unless given `-H "Content-Type: {JSON_MEDIA_TYPE}"`).
  A body without any `Content-Type` is read as JSON.
- **401** (with `WWW-Authenticate`), **403** not allowed (for example not a member of the
  project), **404** not found (also what another organisation's resources are), **409**
  conflict, **412** stale `If-Match`, **413** body over the size limit, **429** over the rate
  limit and **503** a dependency unavailable (both with `Retry-After`).

Every response carries `X-Request-Id` (send your own to find your request in the logs).

## ETag and If-Match

A response carrying one project or task has an `ETag`. `If-Match` is optional: send the tag
back in `If-Match` on the operations that list that header (updates, deletes, status,
progress, assignment, approve, reject) and the change is made only if nobody changed the
resource since; otherwise the answer is **412** with the current `ETag`, and nothing is
written: fetch it again and retry. `*` matches any version and a `W/` prefix is ignored.
Without `If-Match` the last write wins, as in the API this one replaces.

## Idempotency-Key

Optional, on the POSTs that list it (creating a project, member, agent, task or subtask;
approve; reject). Pick a unique key per intended write, 1 to 255 printable ASCII characters (a
UUID will do). The first request with a key runs, and its response is stored with its write.
The same caller sending the same key with the same request (method, path, query and JSON
body) within 24 h gets the stored response again (same status, body, `ETag` and `Location`)
with the header `Idempotent-Replayed: true`, and nothing is written twice. The same key with
a different request is a 422. A request that failed stored nothing, so retry it with the same
key.

## Audit follows writes

Each write stores its audit event in the same transaction (an outbox), and a relay delivers
it to the audit service in the background, woken by the write itself. `GET
/api/tasks/{{task_id}}/audit` and `GET /api/projects/{{project_id}}/audit` therefore show a
write a few tens of milliseconds after it was answered, not always at once: when you need the
entry, poll briefly (should the wake-up be off, the relay looks for new events at least every
`OUTBOX_RELAY_INTERVAL` seconds, 1 by default). Writes never wait for the audit service; while
it is down, events wait in the outbox and none is lost.
"""


def service_note(service: str, title: str) -> str:
    """The introduction's last section for one split service's own document."""
    return (
        f"\n## This service\n\nThis document is **{title}**'s part of the API "
        f"(`taskflow serve {service}`). The gateway, `taskflow serve all` and `taskflow dev` "
        "serve the whole API, and its whole document, at one address.\n"
    )


_PARAM = re.compile(r"{(\w+)}")
_ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "detail", "status_code"],
    "properties": {
        "error": {"type": "string"},
        "detail": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
        "status_code": {"type": "integer"},
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
    },
}
_ERROR_TEXT = {
    400: "Bad request",
    401: "Missing or invalid credentials",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    412: "Precondition failed (stale If-Match)",
    413: "Request body too large",
    415: f"The body is not {JSON_MEDIA_TYPE}",
    422: "Validation failed",
    429: "Too many requests",
    502: "Upstream failure",
    503: "Dependency unavailable, retry later",
}


def _schema_name(schema: Any) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__.removesuffix("Schema")


def build_spec(
    title: str,
    version: str,
    routes: list[Route],
    description: str = API_INTRODUCTION,
    *,
    service: str | None = None,
) -> dict:
    """The OpenAPI 3.1 document for ``routes`` (internal routes left out), opening with
    ``description`` (the API's introduction); ``service`` names the split service whose part
    of the API this is (``info.x-service``)."""
    info: dict[str, Any] = {"description": description}
    if service is not None:
        info["x-service"] = service
    spec = APISpec(
        title=title,
        version=version,
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin(schema_name_resolver=_schema_name)],
        info=info,
    )
    spec.components.schema("Error", ERROR_SCHEMA)
    spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    extras: dict[str, dict[str, Any] | None] = {}
    operation_ids: dict[str, str] = {}
    for route in routes:
        if route.internal or not route.operations:
            continue
        for op in route.operations:
            if op.operation_id is None:
                continue
            # Generated clients name their functions after these: two operations, one name.
            where = f"{op.method} {route.path}"
            if operation_ids.setdefault(op.operation_id, where) != where:
                raise ValueError(
                    f"operationId {op.operation_id!r} names both "
                    f"{operation_ids[op.operation_id]} and {where}"
                )
        path_params = [
            # Ids are positive bigints (schemas.parse_id): anything else is a documented 422.
            {"name": n, "in": "path", "required": True, "schema": _ID_SCHEMA}
            if n.endswith("_id")
            else {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
            for n in _PARAM.findall(route.path)
        ]
        operations = {op.method.lower(): _operation(op, path_params) for op in route.operations}
        spec.path(path=route.path, operations=operations)
        for op in route.operations:
            if op.request is not None:
                extras[_schema_name(op.request)] = getattr(op.request, "openapi_extra", None)
    document = spec.to_dict()
    for route in routes:  # outgoing requests (OpenAPI 3.1 webhooks), documented as they are
        if route.webhooks and not route.internal:
            document.setdefault("webhooks", {}).update(route.webhooks)
    components = document.get("components", {}).get("schemas", {})
    for name, extra in extras.items():
        # Cross-field rules marshmallow validators cannot describe (schema ``openapi_extra``).
        if extra and name in components:
            components[name].update(extra)
    _declare_nul_refused(document)
    _link_created_resources(document, routes)
    return document


def _link_created_resources(document: dict[str, Any], routes: list[Route]) -> None:
    """OpenAPI ``links`` from each operation that creates something (``Operation.creates``) to
    every operation of this document taking its id: the id comes from the response body, the
    other path parameters from the creating request's path (a link is left out when one cannot
    be filled that way)."""
    consumers = [
        (route.path, op.operation_id, set(_PARAM.findall(route.path)))
        for route in routes
        if not route.internal and route.path in document.get("paths", {})
        for op in route.operations
        if op.operation_id is not None
    ]
    for route in routes:
        if route.internal or route.path not in document.get("paths", {}):
            continue
        known = set(_PARAM.findall(route.path))
        for op in route.operations:
            if op.creates is None:
                continue
            links: dict[str, Any] = {}
            for _path, operation_id, params in consumers:
                if op.creates not in params or not params - {op.creates} <= known:
                    continue
                values = {name: f"$request.path.{name}" for name in params - {op.creates}}
                values[op.creates] = "$response.body#/id"
                links[operation_id] = {
                    "operationId": operation_id,
                    "parameters": dict(sorted(values.items())),
                }
            if links:
                response = document["paths"][route.path][op.method.lower()]["responses"]
                response[str(op.status)]["links"] = links


def _declare_nul_refused(document: dict[str, Any]) -> None:
    """Every string a request carries (body, query, path, header) refuses U+0000 with a 422
    (PostgreSQL text cannot hold it): say so with a ``pattern`` on each of them. A string with
    an enum, a const or a format already excludes it; one with a pattern of its own must
    exclude it in that pattern (NotBlank's does; tests/unit/test_openapi_requests.py checks)."""
    components = document.get("components", {}).get("schemas", {})
    seen: set[str] = set()

    def visit(schema: Any) -> None:
        if isinstance(schema, list):
            for item in schema:
                visit(item)
            return
        if not isinstance(schema, dict):
            return
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in seen and name in components:
                seen.add(name)
                visit(components[name])
            return
        types = schema.get("type")
        is_string = types == "string" or (isinstance(types, list) and "string" in types)
        if is_string and not {"enum", "const", "format", "pattern"} & schema.keys():
            schema["pattern"] = NUL_FREE_PATTERN
        for key in ("properties", "patternProperties", "$defs"):
            if isinstance(schema.get(key), dict):
                visit(list(schema[key].values()))
        for key in ("items", "additionalProperties", "not", "if", "then", "else"):
            visit(schema.get(key))
        for key in ("allOf", "anyOf", "oneOf", "prefixItems"):
            visit(schema.get(key))

    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                visit(parameter.get("schema"))
            for media in operation.get("requestBody", {}).get("content", {}).values():
                visit(media.get("schema"))


def _operation(op: Operation, path_params: list[dict[str, Any]]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    if op.response is not None:
        schema: Any = op.response
        content: dict[str, Any] = (
            {"schema": {"type": "array", "items": schema}} if op.many else {"schema": schema}
        )
        if op.example is not None:
            content["example"] = [op.example] if op.many else op.example
        responses[str(op.status)] = {
            "description": op.summary,
            "content": {"application/json": content},
        }
    else:
        responses[str(op.status)] = {"description": op.summary}
    codes = set(op.errors) | ({422} if op.request or op.query or path_params else set())
    if op.request is not None:
        codes.add(415)  # schemas.load_body: a body must be JSON
    if not op.public:
        codes |= {401}
    for code in sorted(codes):
        responses[str(code)] = {
            "description": _ERROR_TEXT.get(code, "Error"),
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"},
                    "example": error_body(code, _ERROR_TEXT.get(code, "Error")),
                }
            },
        }
    out: dict[str, Any] = {
        "summary": op.summary,
        "tags": [op.tag],
        "responses": responses,
    }
    if op.operation_id is not None:
        out["operationId"] = op.operation_id
    if op.description:
        out["description"] = op.description
    parameters = list(path_params)
    if op.query is not None:
        parameters.append({"in": "query", "schema": op.query})
    for header in op.headers:
        parameters.append(
            {"name": header, "in": "header", "required": False, "schema": header_schema(header)}
        )
    if parameters:
        out["parameters"] = parameters
    if op.request is not None:
        media: dict[str, Any] = {"schema": op.request}
        # What Swagger UI's "Try it out" starts from: a body the operation accepts as it is.
        example = getattr(op.request, "openapi_example", None)
        if example is not None:
            media["example"] = example
        out["requestBody"] = {"required": True, "content": {"application/json": media}}
    if not op.public:
        out["security"] = [{"bearerAuth": []}]
    return out


def _sidecar_dir() -> Path:
    spec = find_spec("drf_spectacular_sidecar")  # located, not imported (it imports Django)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("drf-spectacular-sidecar is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static" / "drf_spectacular_sidecar"


_SWAGGER_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="{base}/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{base}/docs/static/swagger-ui-bundle.js"></script>
<script src="{base}/docs/static/swagger-init.js"></script>
</body></html>"""
_SWAGGER_INIT = """window.ui = SwaggerUIBundle({
  url: document.location.pathname.replace(/\\/docs\\/?$/, '') + '/openapi.json',
  dom_id: '#swagger-ui', deepLinking: true, persistAuthorization: true,
  presets: [SwaggerUIBundle.presets.apis], layout: 'BaseLayout'
});"""
_REDOC_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body><div id="redoc"></div>
<script src="{base}/redoc/static/redoc.standalone.js"></script>
<script>Redoc.init('{base}/openapi.json', {{}}, document.getElementById('redoc'))</script>
</body></html>"""


class OpenAPIResource:
    def __init__(self, document: dict) -> None:
        self.document = document

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = self.document


class DocsPageResource:
    def __init__(self, title: str, template: str) -> None:
        self.title = title
        self.template = template

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.text = self.template.format(title=self.title, base="")


class SwaggerInitResource:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.content_type = "application/javascript"
        resp.text = _SWAGGER_INIT


def mount_docs(app: falcon.asgi.App, title: str, document: dict) -> None:
    """``/openapi.json``, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), all served locally."""
    sidecar = _sidecar_dir()
    app.add_route("/openapi.json", OpenAPIResource(document))
    app.add_route("/docs", DocsPageResource(title, _SWAGGER_HTML))
    app.add_route("/redoc", DocsPageResource(title, _REDOC_HTML))
    app.add_route("/docs/static/swagger-init.js", SwaggerInitResource())
    app.add_static_route("/docs/static", str(sidecar / "swagger-ui-dist"))
    app.add_static_route("/redoc/static", str(sidecar / "redoc" / "bundles"))
