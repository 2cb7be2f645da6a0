"""One route table: the nginx gateway, the all-in-one dev router and ``owner_of`` agree on which
service serves every path, internal paths are never exposed, and every /api path is protected."""

from __future__ import annotations

import asyncio
import functools
import re
import uuid
from collections.abc import MutableMapping
from types import ModuleType
from typing import Any

import httpx
import pytest
from taskflow_cli.router import PathRouter
from taskflow_core.gateway import ROUTE_TABLE, is_internal, owner_of

from tests.e2e.conftest import Stack
from tests.e2e.nginx_model import GATEWAY, HIDDEN, parse_locations, select

LOOPBACK = {n: f"127.0.0.1:{8001 + i}" for i, n in enumerate(("tasks", "audit", "auth-verifier"))}
# Paths every deployment has besides the services' route tables.
EXTRA_PATHS = (
    "/",
    "/health",
    "/health/ready",
    "/openapi.json",
    "/docs",
    "/docs/static/swagger-ui-bundle.js",
    "/redoc",
    "/no/such/path",
    "/api",
    "/api/",
    "/api/no/such/thing",
    "/api/tasks/7/audit/",
    "/api/projects/7/audit/",
    "/api/audit",
    "/api/audit/events",
    "/api/tasksaudit",
    "/jwks",
    "/dev/token",
    "/verify",
    "/verify/",
    "/introspect",
    "/internal/tasks/projects/1/access",
    "/internal/audit/events",
    "/internal/auditx",
    "/metrics",
    "/metrics/",
)


def sample(template: str) -> str:
    return re.sub(r"{[^}]+}", "7", template)


@functools.cache
def service_routes(render: ModuleType) -> list[Any]:
    """The three apps' routes (building the apps takes a moment: once per run)."""
    return list(render.service_routes())


def sample_paths(render: ModuleType) -> list[str]:
    """Every path template of the three services (internal ones too), filled in, plus the
    deployment's own paths."""
    templates = {route.path for route in service_routes(render)}
    paths = {sample(t) for t in templates} | set(EXTRA_PATHS)
    return sorted(paths)


def expected_target(render: ModuleType, path: str) -> str:
    if path in render.GATEWAY_LOCAL:
        return GATEWAY
    if is_internal(path) or any(re.match(rx, path) for rx in render.GATEWAY_HIDDEN):
        return HIDDEN
    return owner_of(path)


def dev_router_owner(path: str) -> str:
    """Which app the all-in-one dev router hands ``path`` to."""
    chosen: list[str] = []

    def recorder(name: str) -> Any:
        async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
            chosen.append(name)

        return app

    router = PathRouter({n: recorder(n) for n in LOOPBACK}, [], "test")
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def call() -> None:
        await router({"type": "http", "path": path, "method": "GET"}, None, send)  # type: ignore[arg-type]

    asyncio.run(call())
    if not chosen:
        assert sent and sent[0]["status"] == 200  # the router answered itself
        return GATEWAY
    return chosen[0]


def disagreements(render: ModuleType, config: str) -> list[str]:
    locations = parse_locations(config)
    public = public_templates(render)
    problems = []
    for path in sample_paths(render):
        location = select(locations, path)
        got = location.target if location else "no location"
        want = expected_target(render, path)
        if got != want:
            problems.append(f"{path}: nginx -> {got}, route table -> {want}")
        elif want not in (GATEWAY, HIDDEN) and location is not None:
            is_public = any(re.match(render.template_regex(t), path) for t in public)
            if path.startswith("/api") and not location.protected and not is_public:
                problems.append(f"{path}: reaches {got} without auth_request")
            if not path.startswith("/api") and location.protected:
                problems.append(f"{path}: public path behind auth_request")
    return problems


def public_templates(render: ModuleType) -> list[str]:
    return list(render.public_api_templates(service_routes(render)))


@pytest.fixture(scope="module")
def rendered(render: ModuleType) -> str:
    options = render.GatewayOptions(
        upstreams=LOOPBACK, public_api_templates=public_templates(render)
    )
    return str(render.render_config(options))


def test_nginx_routes_every_path_to_the_route_tables_owner(
    render: ModuleType, rendered: str
) -> None:
    assert disagreements(render, rendered) == []


def test_dev_router_and_route_table_agree(render: ModuleType) -> None:
    for path in sample_paths(render):
        want = expected_target(render, path)
        got = dev_router_owner(path)
        if want == HIDDEN:
            assert got == owner_of(path), path  # dev mode has no gateway: the owner answers
        elif path == "/openapi.json":
            assert got == GATEWAY  # the merged document, as the gateway serves it
        elif path != "/health":
            assert got == want, path


def test_the_check_fails_when_nginx_and_the_table_disagree(
    render: ModuleType, rendered: str
) -> None:
    """Swap the audit location's upstream: the comparison must notice."""
    audit_rule = next(rule for rule in ROUTE_TABLE if rule.service == "audit" and rule.public)
    start = rendered.index(f'location ~ "{audit_rule.pattern}"')
    end = rendered.index("proxy_pass http://tf_audit;", start)
    broken = rendered[:end] + "proxy_pass http://tf_tasks;" + rendered[end + 27 :]
    problems = disagreements(render, broken)
    assert problems and all("nginx -> tasks, route table -> audit" in p for p in problems)
    # An internal path that became reachable is noticed too.
    exposed = rendered.replace(
        'location ~ "^/verify/?$" {\n            return 404;',
        ('location ~ "^/verify/?$" {\n            proxy_pass http://tf_auth_verifier;'),
    )
    found = disagreements(render, exposed)
    assert any(p.startswith("/verify: nginx -> auth-verifier") for p in found)


def test_rendered_config_is_accepted_by_nginx(
    render: ModuleType, nginx_binary: str, tmp_path: Any
) -> None:
    import subprocess

    options = render.GatewayOptions(
        upstreams=LOOPBACK,
        listen="127.0.0.1:18099",
        openapi_file=str(tmp_path / "openapi.json"),
        access_log=str(tmp_path / "access.log"),
    )
    config = render.render(tmp_path, options)
    result = subprocess.run(
        [nginx_binary, "-t", "-p", f"{tmp_path}/", "-c", str(config), "-e", "stderr"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.e2e
def test_the_running_gateway_sends_each_path_to_its_owner(stack: Stack, render: ModuleType) -> None:
    """Through the real nginx: the access log's upstream address names the service that
    answered each sample path (with a valid token, so /api paths get past the verifier)."""
    ports = {str(svc.port): name for name, svc in stack.services.items()}
    token = stack.token("route-checker")
    sent: dict[str, str] = {}
    with stack.client(token) as client:
        for path in sample_paths(render):
            request_id = f"route-{uuid.uuid4().hex}"
            response = client.get(path, headers={"X-Request-Id": request_id})
            sent[request_id] = path
            want = expected_target(render, path)
            if want == HIDDEN:
                assert response.status_code == 404, (path, response.text)
                assert response.json()["status_code"] == 404
    lines = {line["request_id"]: line for line in stack.nginx.access_lines()}
    wrong = []
    for request_id, path in sent.items():
        line = lines.get(request_id)
        assert line is not None, f"no access log line for {path}"
        want = expected_target(render, path)
        upstream = line["upstream_addr"].split(",")[-1].strip()
        got = ports.get(upstream.rsplit(":", 1)[-1], upstream or GATEWAY)
        if want == HIDDEN:
            got = HIDDEN if line["status"] == 404 and not upstream else got
        if got != want:
            wrong.append(f"{path}: answered by {got} ({line['status']}), owner {want}")
    assert wrong == [], "\n".join(wrong) + "\n" + stack.diagnostics()[-4000:]


@pytest.mark.e2e
def test_gateway_serves_the_whole_api_in_one_document(stack: Stack, render: ModuleType) -> None:
    spec = httpx.get(f"{stack.url}/openapi.json").json()
    documented = set(spec["paths"])
    for route in service_routes(render):
        if route.internal or not route.operations:
            continue
        if expected_target(render, sample(route.path)) == HIDDEN:
            assert route.path not in documented, f"documents a path it hides: {route.path}"
        else:
            assert route.path in documented, route.path
    docs = httpx.get(f"{stack.url}/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text


def test_compose_config_re_resolves_upstream_names(render: ModuleType) -> None:
    """In docker-compose a re-created container gets a new address: nginx must look it up
    again rather than keep the one it saw at start."""
    options = render.GatewayOptions(
        upstreams={s: f"{s}:8000" for s in LOOPBACK},
        resolver="127.0.0.11",
        public_api_templates=public_templates(render),
    )
    config = render.render_config(options)
    assert "resolver 127.0.0.11" in config
    for service in LOOPBACK:
        assert f"server {service}:8000 max_fails=0 resolve;" in config
    assert disagreements(render, config) == []


def test_every_identity_header_of_the_verifier_is_forwarded_and_cleared(
    render: ModuleType, rendered: str
) -> None:
    """Each header /verify answers with is copied onto protected requests and stripped from
    the client's request everywhere else (a forged copy never reaches a service)."""
    from taskflow_auth_verifier.resources import IDENTITY_HEADERS

    assert set(IDENTITY_HEADERS) <= set(render.IDENTITY_HEADERS)
    for location in parse_locations(rendered):
        if location.target in (GATEWAY, HIDDEN):
            continue
        for header in IDENTITY_HEADERS:
            var = "$tf_" + header.lower().replace("-", "_")
            expected = var if location.protected else '""'
            assert f"proxy_set_header {header} {expected};" in location.body, (
                location.argument,
                header,
            )


def test_allowed_origins_shape_the_gateways_cors_answers(render: ModuleType) -> None:
    def config(origins: list[str]) -> str:
        options = render.GatewayOptions(upstreams=LOOPBACK, allowed_origins=origins)
        return str(render.render_config(options))

    listed = config(["https://app.example.com", "http://localhost:3000"])
    assert '"https://app.example.com" "https://app.example.com";' in listed
    assert 'default "";' in listed.split("map $http_origin $tf_cors_origin {")[1].split("}")[0]
    anything = config(["*"])
    assert 'default "*";' in anything.split("map $http_origin $tf_cors_origin {")[1]
    with pytest.raises(ValueError):
        config(['https://evil.test" "x'])
