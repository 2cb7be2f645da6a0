"""What the tasks service's resources share, built once by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import psycopg_pool
from taskflow_core.config import Settings

from .provisioning import Provisioner


@dataclass(frozen=True)
class TasksDeps:
    """Settings (and its clock), the pool, THE http client of the app, and the caller cache."""

    settings: Settings
    pool: psycopg_pool.AsyncConnectionPool
    http: httpx.AsyncClient
    provisioner: Provisioner
