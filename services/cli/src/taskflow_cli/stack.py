"""The services the command knows, how to migrate them and how to build them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import taskflow_audit
import taskflow_auth_verifier
import taskflow_tasks
from taskflow_audit.app import create_app as create_audit_app
from taskflow_auth_verifier.app import create_app as create_auth_verifier_app
from taskflow_core import __version__
from taskflow_core.config import Settings
from taskflow_core.migrations import apply_migrations
from taskflow_core.service import ServiceApp
from taskflow_tasks.app import create_app as create_tasks_app

from .router import PathRouter


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    package: str  # the package whose ``migrations`` folder holds the service's SQL
    schema: str
    create_app: Callable[[Settings], ServiceApp]


SERVICES: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec(
            taskflow_tasks.SERVICE, taskflow_tasks.__name__, taskflow_tasks.SCHEMA, create_tasks_app
        ),
        ServiceSpec(
            taskflow_audit.SERVICE, taskflow_audit.__name__, taskflow_audit.SCHEMA, create_audit_app
        ),
        ServiceSpec(
            taskflow_auth_verifier.SERVICE,
            taskflow_auth_verifier.__name__,
            taskflow_auth_verifier.SCHEMA,
            create_auth_verifier_app,
        ),
    )
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
