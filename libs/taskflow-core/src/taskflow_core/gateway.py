"""Which service owns which public path: the one table that the all-in-one dev router uses and
that the nginx configuration in deploy/nginx must agree with (a test checks it)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class PathRule:
    pattern: str
    service: str
    public: bool = True  # False: internal, never exposed through the gateway

    def matches(self, path: str) -> bool:
        return re.match(self.pattern, path) is not None


ROUTE_TABLE: tuple[PathRule, ...] = (
    PathRule(r"^/api/tasks/[^/]+/audit/?$", "audit"),
    PathRule(r"^/api/projects/[^/]+/audit/?$", "audit"),
    PathRule(r"^/api/audit(/.*)?$", "audit"),
    PathRule(r"^/internal/audit(/.*)?$", "audit", public=False),
    PathRule(r"^/internal/tasks(/.*)?$", "tasks", public=False),
    PathRule(r"^/api(/.*)?$", "tasks"),
    PathRule(r"^/verify/?$", "auth-verifier", public=False),
    PathRule(r"^/introspect/?$", "auth-verifier", public=False),
    PathRule(r"^/jwks/?$", "auth-verifier"),
    PathRule(r"^/dev/.*$", "auth-verifier"),
)
DEFAULT_SERVICE = "tasks"  # /, /health, /docs, /openapi.json and unknown paths


def owner_of(path: str) -> str:
    """The service that serves ``path``."""
    for rule in ROUTE_TABLE:
        if rule.matches(path):
            return rule.service
    return DEFAULT_SERVICE


def is_internal(path: str) -> bool:
    return any(rule.matches(path) and not rule.public for rule in ROUTE_TABLE)
