"""`create_app(settings)`: builds the TaskFlow Tasks service from its configuration."""

from __future__ import annotations

from taskflow_core.config import Settings
from taskflow_core.db import create_pool
from taskflow_core.logging import configure_logging
from taskflow_core.service import Lifecycle, ServiceApp, build_app

from . import SERVICE


def create_app(settings: Settings | None = None) -> ServiceApp:
    settings = settings or Settings.from_env()
    configure_logging(settings)
    pool = create_pool(settings, f"taskflow-{SERVICE}")
    lifecycle = Lifecycle(pool)
    return build_app(
        service=SERVICE,
        title="TaskFlow Tasks",
        settings=settings,
        routes=[],
        lifecycle=lifecycle,
    )
