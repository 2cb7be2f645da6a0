"""The tenant's organisation members, as the SSO lists them (asked with the caller's own
credentials)."""

from __future__ import annotations

from typing import Any

import httpx
import structlog
from falcon.asgi import Request
from taskflow_core.errors import APIError, Forbidden, Unauthorized

from ..deps import TasksDeps

log = structlog.get_logger("taskflow.workers")

SSO_TIMEOUT = 30.0  # the old API's timeout for this call


def _sso_members(payload: Any) -> list[dict[str, Any]]:
    """Better Auth answers a list, or an object with ``members``."""
    if isinstance(payload, dict):
        payload = payload.get("members", [])
    if not isinstance(payload, list):
        raise APIError(502, "Failed to fetch org members from SSO: invalid response")
    return [m for m in payload if isinstance(m, dict)]


async def organization_members(
    deps: TasksDeps, req: Request, tenant_id: str, wait: float = SSO_TIMEOUT
) -> list[dict[str, Any]]:
    """The tenant's organisation members at the SSO, asked with the caller's own credentials
    (so the SSO answers only to its members), waiting ``wait`` seconds at most. SSO 401 →
    401, 403 → 403, anything else 502."""
    headers = {"Authorization": req.get_header("Authorization") or ""}
    cookie = req.get_header("Cookie")
    if cookie:
        headers["Cookie"] = cookie
    url = f"{deps.settings.sso_url.rstrip('/')}/api/organizations/{tenant_id}/members"
    try:
        answer = await deps.http.get(url, headers=headers, timeout=wait)
    except httpx.HTTPError as exc:
        log.warning("sso_members_unreachable", error=type(exc).__name__)
        raise APIError(502, f"Failed to connect to SSO: {type(exc).__name__}") from exc
    if answer.status_code == 401:
        raise Unauthorized("SSO authentication failed")
    if answer.status_code == 403:
        raise Forbidden("Not a member of this organization")
    if answer.status_code != 200:
        raise APIError(502, f"Failed to fetch org members from SSO: {answer.status_code}")
    try:
        return _sso_members(answer.json())
    except ValueError as exc:
        raise APIError(502, "Failed to fetch org members from SSO: invalid response") from exc
