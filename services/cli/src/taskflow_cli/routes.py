"""``taskflow routes``: every route the three services serve, one line each: method, path,
service, resource class, and the ``file:line`` of the responder that answers it, so finding a
route's code is one hop (no grepping for the path)."""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from taskflow_core.config import Settings

from .stack import SERVICES

# The apps are only built, never served: no database is contacted.
_LISTING_SETTINGS = Settings(
    database_url="postgresql://taskflow-routes@127.0.0.1:1/unused",
    service_secret=secrets.token_urlsafe(32),
)


@dataclass(frozen=True)
class RouteLine:
    method: str
    path: str
    service: str
    resource: str
    where: str  # file:line of the responder (on_get, on_post_item, ...)


def _location(target: Any) -> str:
    """``file:line`` of a class or function, the file relative to the working directory."""
    try:
        path = Path(inspect.getsourcefile(inspect.unwrap(target)) or "?")
        line = inspect.getsourcelines(inspect.unwrap(target))[1]
    except (OSError, TypeError):
        return "?"
    with contextlib.suppress(ValueError):  # outside the working directory: shown whole
        path = path.resolve().relative_to(Path.cwd().resolve())
    return f"{path}:{line}"


def _where(resource: object, method: str, suffix: str | None) -> str:
    """The resource class; and where its responder is written when it inherits it (the task
    change resources share one ``on_patch``)."""
    cls = type(resource)
    name = f"on_{method.lower()}" + (f"_{suffix}" if suffix else "")
    responder = getattr(cls, name, None)
    if responder is None:
        return _location(cls)
    if getattr(responder, "__qualname__", "").split(".")[0] == cls.__name__:
        return _location(responder)
    return f"{_location(cls)} (answered by {_location(responder)})"


def route_lines(settings: Settings = _LISTING_SETTINGS) -> list[RouteLine]:
    """Every documented operation of every service's route table (internal routes included)."""
    lines: list[RouteLine] = []
    for name, spec in SERVICES.items():
        for route in spec.create_app(settings).routes:
            for op in route.operations:
                lines.append(
                    RouteLine(
                        method=op.method.upper(),
                        path=route.path,
                        service=name,
                        resource=type(route.resource).__name__,
                        where=_where(route.resource, op.method, route.suffix),
                    )
                )
    return sorted(lines, key=lambda r: (r.path, r.method, r.service))


def add_routes_parser(sub: Any) -> None:
    routes = sub.add_parser("routes", help="list every route: method, path, service, code")
    routes.add_argument("--json", action="store_true", help="one JSON object per route")


def cmd_routes(args: argparse.Namespace) -> int:
    lines = route_lines()
    if args.json:
        for line in lines:
            print(json.dumps(asdict(line)))
        return 0
    widths = [max(len(getattr(r, f)) for r in lines) for f in ("method", "path", "service")]
    widths.append(max(len(r.resource) for r in lines))
    for r in lines:
        print(
            f"{r.method:<{widths[0]}}  {r.path:<{widths[1]}}  {r.service:<{widths[2]}}  "
            f"{r.resource:<{widths[3]}}  {r.where}"
        )
    return 0
