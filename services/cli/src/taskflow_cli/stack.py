"""The services the command knows, how to migrate them and how to build them."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from taskflow_core import __version__
from taskflow_core.config import Settings
from taskflow_core.migrations import apply_migrations
from taskflow_core.service import ServiceApp

from .router import PathRouter


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    package: str
    schema: str

    def create_app(self, settings: Settings) -> ServiceApp:
        module = importlib.import_module(f"{self.package}.app")
        app: ServiceApp = module.create_app(settings)
        return app


SERVICES: dict[str, ServiceSpec] = {
    "tasks": ServiceSpec("tasks", "taskflow_tasks", "tasks"),
    "audit": ServiceSpec("audit", "taskflow_audit", "audit"),
    "auth-verifier": ServiceSpec("auth-verifier", "taskflow_auth_verifier", "auth"),
}


def migrate(database_url: str, names: list[str] | None = None) -> dict[str, list[str]]:
    """Apply pending migrations of the named services (all by default)."""
    return {
        name: apply_migrations(database_url, SERVICES[name].schema, SERVICES[name].package)
        for name in names or list(SERVICES)
    }


def all_in_one(settings: Settings, on_started: Callable[[], None] | None = None) -> PathRouter:
    """The three apps behind one path router (``taskflow dev`` and ``taskflow serve all``);
    ``on_started`` runs once all three have started."""
    apps = {name: spec.create_app(settings) for name, spec in SERVICES.items()}
    routes = [route for app in apps.values() for route in app.routes]
    seen: set[str] = set()
    unique = [r for r in routes if not (r.path in seen or seen.add(r.path))]  # type: ignore[func-returns-value]
    return PathRouter(apps, unique, __version__, on_started)  # type: ignore[arg-type]
