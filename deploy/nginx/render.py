"""Render the TaskFlow nginx gateway from the one route table.

The location blocks come from ``taskflow_core.gateway.ROUTE_TABLE`` in its order (nginx tries
regex locations in the order written and takes the first match, exactly as ``owner_of`` does),
so the gateway and the all-in-one dev router cannot disagree. The merged OpenAPI document is
the dev router's own (``taskflow_cli.stack.all_in_one``), written next to the config.

    uv run python deploy/nginx/render.py --out build/gateway \\
        --upstream tasks=tasks:8000 --upstream audit=audit:8000 \\
        --upstream auth-verifier=auth-verifier:8000 --listen 8080
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from taskflow_core.config import Settings
from taskflow_core.errors import error_body
from taskflow_core.gateway import DEFAULT_SERVICE, ROUTE_TABLE, is_internal, owner_of
from taskflow_core.routing import Route

TEMPLATE = Path(__file__).with_name("nginx.conf.template")
SERVICES = ("tasks", "audit", "auth-verifier")
AUTH_SERVICE = "auth-verifier"
# Served by every service but only for the deployment's own scrapers, never through the gateway.
GATEWAY_HIDDEN = (r"^/metrics(/.*)?$",)
# Answered by the gateway itself, whatever the route table says.
GATEWAY_LOCAL = ("/health", "/openapi.json")
# Paths that need a verified identity: the forward-auth subrequest runs first.
PROTECTED_PREFIX = "/api"
IDENTITY_HEADERS = (
    "X-User-Id",
    "X-User-Email",
    "X-User-Name",
    "X-Tenant-Id",
    "X-Actor-Type",
    "X-Client-Id",
    "X-Client-Name",
    "X-User-Role",
)
ERROR_MESSAGES = {
    400: "Bad Request",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    414: "URI Too Long",
    429: "Too many requests",
    494: "Request header too large",
    500: "Gateway error",
    502: "Service unavailable, retry later",
    503: "Service unavailable, retry later",
    504: "Service did not answer in time",
}
AUTH_UNAVAILABLE = "Authentication service unavailable, retry later"
PROXIED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
RETRY_AFTER = {502: "5", 503: "5", 504: "5"}


@dataclass(frozen=True)
class GatewayOptions:
    """What differs between deployments: where the services are and the public limits."""

    upstreams: Mapping[str, str]  # service name -> "host:port"
    listen: str = "8080"
    max_body_bytes: int = 1_048_576
    allowed_origins: Sequence[str] = ()
    openapi_file: str = "/etc/nginx/taskflow/openapi.json"
    access_log: str = "/dev/stdout"
    resolver: str | None = None  # DNS for upstreams whose address may change (compose)
    keepalive: int = 16
    workers: int = 2
    # Seconds nginx reuses the verifier's 200 for one credential (0: ask it every time).
    auth_cache_seconds: int = 10
    public_api_templates: Sequence[str] = field(default_factory=tuple)


def upstream_name(service: str) -> str:
    return "tf_" + service.replace("-", "_")


def template_regex(template: str) -> str:
    """``/api/jobs/{name}`` -> ``^/api/jobs/[^/]+/?$`` (the trailing slash is optional, as in
    the services, which strip it)."""
    parts = ["[^/]+" if part.startswith("{") else re.escape(part) for part in template.split("/")]
    return "^" + "/".join(parts).rstrip("/") + "/?$"


def _sample(template: str) -> str:
    return re.sub(r"{[^}]+}", "1", template)


def _nginx_quote(text: str) -> str:
    if "$" in text:
        raise ValueError(f"'$' would be read as an nginx variable: {text!r}")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _json_error(status: int, message: str) -> str:
    return _nginx_quote(json.dumps(error_body(status, message), separators=(",", ":")))


def _indent(lines: Iterable[str], level: int) -> str:
    pad = " " * (4 * level)
    return "\n".join(pad + line if line else "" for line in lines)


def _error_pages(overrides: Mapping[int, str] | None = None) -> list[str]:
    targets = {code: f"@error_{code}" for code in ERROR_MESSAGES}
    targets.update(overrides or {})
    targets[413] = "@error_413"
    return [f"error_page {code} = {target};" for code, target in sorted(targets.items())]


def _error_location(name: str, status: int, message: str, extra: Sequence[str] = ()) -> list[str]:
    return [
        f"location {name} {{",
        "    default_type application/json;",
        "    add_header X-Request-Id $tf_request_id always;",
        "    add_header Access-Control-Allow-Origin $tf_cors_origin always;",
        "    add_header Access-Control-Allow-Credentials $tf_cors_credentials always;",
        '    add_header Access-Control-Expose-Headers "X-Request-Id, WWW-Authenticate, '
        'Retry-After" always;',
        "    add_header Vary Origin always;",
        *(f"    {line}" for line in extra),
        f"    return {status} {_json_error(status, message)};",
        "}",
    ]


def _error_locations(options: GatewayOptions) -> list[str]:
    lines: list[str] = []
    for code, message in sorted(ERROR_MESSAGES.items()):
        extra: list[str] = []
        if code in RETRY_AFTER:
            extra.append(f'add_header Retry-After "{RETRY_AFTER[code]}" always;')
        if code == 401:
            extra.append("add_header WWW-Authenticate $tf_default_challenge always;")
        if code == 405:
            # nginx answers 405 itself only for methods it never proxies (TRACE); a service's
            # own 405 passes through with its precise Allow. RFC 9110 requires the header.
            extra.append(f'add_header Allow "{PROXIED_METHODS}" always;')
        status = 431 if code == 494 else code
        lines += _error_location(f"@error_{code}", status, message, extra)
    lines += _error_location(
        "@error_413", 413, f"Request body exceeds {options.max_body_bytes} bytes"
    )
    lines += _error_location(
        "@auth_unavailable", 503, AUTH_UNAVAILABLE, ['add_header Retry-After "5" always;']
    )
    return lines


def _proxy_headers(identity_from_verifier: bool) -> list[str]:
    lines = [
        "proxy_set_header Host $host;",
        "proxy_set_header X-Request-Id $tf_request_id;",
        "proxy_set_header X-Real-IP $remote_addr;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header X-Forwarded-Host $http_host;",
        'proxy_set_header Connection "";',
    ]
    for header in IDENTITY_HEADERS:
        # An empty value drops the header: a client-sent copy never reaches a service.
        value = f"$tf_{_var(header)}" if identity_from_verifier else '""'
        lines.append(f"proxy_set_header {header} {value};")
    return lines


def _var(header: str) -> str:
    return header.lower().replace("-", "_")


def _proxy_location(regex: str, service: str, protected: bool) -> list[str]:
    body: list[str] = []
    if protected:
        # Saved before the subrequest (rewrite phase), where $uri is still the client's path.
        body.append("set $tf_original_uri $tf_clean_uri;")
        body.append("auth_request /_taskflow_auth;")
        body.append("auth_request_set $tf_auth_challenge $upstream_http_www_authenticate;")
        body += [
            f"auth_request_set $tf_{_var(h)} $upstream_http_{_var(h)};" for h in IDENTITY_HEADERS
        ]
        # A failed or unreachable verifier makes auth_request answer 500: say what it is.
        body += _error_pages({500: "@auth_unavailable"})
    body += _proxy_headers(identity_from_verifier=protected)
    body.append(f"proxy_pass http://{upstream_name(service)};")
    return [f'location ~ "{regex}" {{', *(f"    {line}" for line in body), "}"]


def _hidden_location(regex: str) -> list[str]:
    return [f'location ~ "{regex}" {{', "    return 404;", "}"]


def route_locations(options: GatewayOptions) -> list[str]:
    """Location blocks in route-table order (first regex match wins, as in ``owner_of``)."""
    lines: list[str] = ["# Never exposed: internal to the deployment."]
    for regex in GATEWAY_HIDDEN:
        lines += _hidden_location(regex)
    public_api = [t for t in options.public_api_templates if t.startswith(PROTECTED_PREFIX)]
    if public_api:
        lines.append("# Public operations under /api (no token needed), from the route tables.")
    for template in public_api:
        lines += _proxy_location(template_regex(template), owner_of(_sample(template)), False)
    lines.append("# taskflow_core.gateway.ROUTE_TABLE, in order.")
    for rule in ROUTE_TABLE:
        if not rule.public:
            lines += _hidden_location(rule.pattern)
            continue
        protected = rule.pattern.startswith("^" + PROTECTED_PREFIX)
        lines += _proxy_location(rule.pattern, rule.service, protected)
    lines.append("# Everything else (/, /health/ready, /docs, unknown paths): the default owner.")
    lines += [
        "location / {",
        *(f"    {line}" for line in _proxy_headers(identity_from_verifier=False)),
        f"    proxy_pass http://{upstream_name(DEFAULT_SERVICE)};",
        "}",
    ]
    return lines


def _upstreams(options: GatewayOptions) -> list[str]:
    lines: list[str] = []
    for service in SERVICES:
        address = options.upstreams[service]
        lines.append(f"upstream {upstream_name(service)} {{")
        if options.resolver:
            # Re-resolved while running, so a re-created container is found at its new address.
            lines.append(f"    zone {upstream_name(service)} 64k;")
            lines.append(f"    server {address} max_fails=0 resolve;")
        else:
            lines.append(f"    server {address} max_fails=0;")
        lines.append(f"    keepalive {options.keepalive};")
        lines.append("}")
    return lines


def _cors_origin_map(origins: Sequence[str]) -> list[str]:
    """``$http_origin`` -> the Access-Control-Allow-Origin of the gateway's own answers: the
    origin itself when allowed, nothing otherwise; ``*`` (as the services read an
    ALLOWED_ORIGINS of ``*``) allows any origin, without credentials."""
    if "*" in origins:
        return ['default "*";']
    return ['default "";', *(f'"{o}" "{o}";' for o in origins)]


def _auth_cache_zone(options: GatewayOptions) -> list[str]:
    if options.auth_cache_seconds <= 0:
        return []
    return [
        "proxy_cache_path auth_cache levels=1:2 keys_zone=taskflow_auth:10m max_size=64m",
        "                 inactive=60s use_temp_path=off;",
        "map $http_authorization $tf_no_credential {",
        "    default 0;",
        '    "" 1;',
        "}",
        "# A verifier answer that names nobody (no X-User-Id) is never stored.",
        "map $upstream_http_x_user_id $tf_anonymous_answer {",
        "    default 0;",
        '    "" 1;',
        "}",
    ]


def _auth_cache(options: GatewayOptions) -> list[str]:
    """The verifier's 200 reused per credential for a few seconds: without it every API call
    through the gateway costs a second HTTP request and token check on the verifier. Safe
    because it only saves a check: each service verifies every token again (expiry included)
    and keeps its own 30 s caches of verified tokens and agent keys. Refusals are never
    cached, nor answers to requests without a credential, nor a 200 without identity headers
    (only a 200 that names a user is worth reusing). The cache files hold the
    ``Authorization`` value as their key: keep ``auth_cache`` on a private (ideally memory)
    volume."""
    if options.auth_cache_seconds <= 0:
        return []
    return [
        "proxy_cache taskflow_auth;",
        "proxy_cache_key $http_authorization;",
        f"proxy_cache_valid 200 {options.auth_cache_seconds}s;",
        "proxy_cache_methods GET;",
        "proxy_ignore_headers Cache-Control Expires Set-Cookie Vary;",
        "proxy_no_cache $tf_no_credential $tf_anonymous_answer;",
        "proxy_cache_bypass $tf_no_credential;",
    ]


def render_config(options: GatewayOptions) -> str:
    """The nginx.conf text for ``options``."""
    missing = set(SERVICES) - set(options.upstreams)
    if missing:
        raise ValueError(f"no upstream address for {sorted(missing)}")
    for origin in options.allowed_origins:
        if origin != "*" and not re.fullmatch(r"[A-Za-z0-9.:/_\-\[\]]+", origin):
            raise ValueError(f"refusing an origin nginx would misread: {origin!r}")
    clear_identity = [f'proxy_set_header {h} "";' for h in IDENTITY_HEADERS]
    replacements = {
        "WORKERS": str(options.workers),
        "ACCESS_LOG": options.access_log,
        "RESOLVER": (
            f"\n    resolver {options.resolver} valid=10s ipv6=off;\n" if options.resolver else ""
        ),
        "CORS_ORIGINS": _indent(_cors_origin_map(options.allowed_origins), 2),
        "UPSTREAMS": _indent(_upstreams(options), 1),
        "LISTEN": options.listen,
        "MAX_BODY_BYTES": str(options.max_body_bytes),
        "ERROR_PAGES": _indent(_error_pages(), 2),
        "OPENAPI_FILE": options.openapi_file,
        "AUTH_UPSTREAM": upstream_name(AUTH_SERVICE),
        "CLEAR_IDENTITY": _indent(clear_identity, 3),
        "AUTH_CACHE_ZONE": _indent(_auth_cache_zone(options), 1),
        "AUTH_CACHE": _indent(_auth_cache(options), 3),
        "ERROR_LOCATIONS": _indent(_error_locations(options), 2),
        "ROUTE_LOCATIONS": _indent(route_locations(options), 2),
    }
    text = TEMPLATE.read_text()
    for name, value in replacements.items():
        text = text.replace(f"@@{name}@@", value)
    leftover = re.findall(r"@@[A-Z_]+@@", text)
    if leftover:
        raise ValueError(f"unfilled template markers: {leftover}")
    return text


_RENDER_SETTINGS = Settings(database_url="postgresql://gateway-render@127.0.0.1:1/unused")


@functools.cache
def _all_in_one() -> Any:
    """The dev router over the three apps (built once; no database is contacted)."""
    from taskflow_cli.stack import all_in_one

    return all_in_one(_RENDER_SETTINGS)


def service_routes() -> list[Route]:
    """Every route of the three apps, built as the dev router builds them."""
    routes: list[Route] = []
    for app in _all_in_one().apps.values():
        routes += app.routes
    return routes


def hidden_at_gateway(path: str) -> bool:
    """Whether the gateway answers 404 for ``path`` (internal to the deployment)."""
    return is_internal(path) or any(re.match(rx, path) for rx in GATEWAY_HIDDEN)


def merged_openapi() -> bytes:
    """The whole API's OpenAPI document, the one the all-in-one dev router serves, less the
    paths the gateway does not expose."""
    document = json.loads(_all_in_one().openapi)
    document["paths"] = {
        path: item
        for path, item in document.get("paths", {}).items()
        if not hidden_at_gateway(_sample(path))
    }
    return json.dumps(document, indent=1).encode()


def public_api_templates(routes: Iterable[Route]) -> list[str]:
    """Route templates under /api whose every operation needs no token."""
    seen: list[str] = []
    for route in routes:
        if route.internal or not route.operations or not route.public:
            continue
        if route.path.startswith(PROTECTED_PREFIX) and route.path not in seen:
            seen.append(route.path)
    return seen


def render(out_dir: Path, options: GatewayOptions) -> Path:
    """Write ``nginx.conf`` and ``openapi.json`` into ``out_dir``; returns the config path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "openapi.json").write_bytes(merged_openapi())
    if not options.public_api_templates:
        options = replace(options, public_api_templates=public_api_templates(service_routes()))
    config = out_dir / "nginx.conf"
    config.write_text(render_config(options))
    return config


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="folder for nginx.conf")
    parser.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="SERVICE=HOST:PORT",
        help="address of a service (default: <service>:8000)",
    )
    parser.add_argument("--listen", default="8080")
    parser.add_argument("--max-body-bytes", type=int, default=Settings().max_body_bytes)
    parser.add_argument(
        "--allowed-origins",
        default=",".join(Settings().allowed_origins),
        help="comma-separated, as ALLOWED_ORIGINS",
    )
    parser.add_argument(
        "--openapi-file",
        default=None,
        help="absolute path nginx serves /openapi.json from (default: <out>/openapi.json)",
    )
    parser.add_argument("--access-log", default="/dev/stdout")
    parser.add_argument("--resolver", default=None, help="DNS server for upstream names")
    parser.add_argument("--workers", type=int, default=2, help="nginx worker processes")
    parser.add_argument(
        "--auth-cache-seconds",
        type=int,
        default=GatewayOptions.auth_cache_seconds,
        help="seconds a verified credential is not checked again by the verifier (0: off)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    upstreams = {service: f"{service}:8000" for service in SERVICES}
    for item in args.upstream:
        service, _, address = item.partition("=")
        if service not in SERVICES or not address:
            print(f"render: bad --upstream {item!r}", file=sys.stderr)
            return 2
        upstreams[service] = address
    out = args.out.resolve()
    options = GatewayOptions(
        upstreams=upstreams,
        listen=args.listen,
        max_body_bytes=args.max_body_bytes,
        allowed_origins=[o.strip() for o in args.allowed_origins.split(",") if o.strip()],
        openapi_file=args.openapi_file or str(out / "openapi.json"),
        access_log=args.access_log,
        resolver=args.resolver,
        workers=args.workers,
        auth_cache_seconds=args.auth_cache_seconds,
    )
    print(render(out, options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
