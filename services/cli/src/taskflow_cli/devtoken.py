"""What `taskflow dev` prints for trying the API (the dev issuer comes with the auth work)."""

from __future__ import annotations

from taskflow_core.config import Settings


def dev_banner(settings: Settings, base: str) -> str:
    return "  token:  (dev issuer not available yet)\n"
