"""Who may read which history: the audit service asks the tasks service (it owns projects and
memberships) over HTTP, and keeps each answer for a few seconds.

The tasks service's internal endpoints (``taskflow_tasks.internal``):
- ``GET /internal/tasks/projects/{project_id}/access?<caller>`` (``CallerRef.params``)
  → ``{"project_id", "access": "owner"|"member"|"forbidden"|"not_found", "deleted"}``;
- ``GET /internal/tasks/tasks/{task_id}/project`` → ``{"task_id", "project_id", "tenant_id"}``
  of a live or deleted task (``null``s for an unknown one; asked only when no entry of that
  task is stored yet);
- ``GET /internal/tasks/readable-projects?<caller>``
  → ``{"project_ids": [...]}`` (deleted projects included: their history stays readable).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, cast

import httpx
import structlog
from taskflow_core.auth.identity import Identity
from taskflow_core.errors import Forbidden, NotFound, ServiceUnavailable

log = structlog.get_logger("taskflow.audit.access")

Access = Literal["owner", "member", "forbidden", "not_found"]
ACCESS_VALUES: tuple[Access, ...] = ("owner", "member", "forbidden", "not_found")
TASKS_UNAVAILABLE = "Tasks service unavailable, retry shortly"
PROJECT_NOT_FOUND = "Project not found"
TASK_NOT_FOUND = "Task not found"
NOT_A_MEMBER = "Not a member of this project"
OWNER_ONLY_VERIFY = "Only project owner can verify the audit trail"

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


# -- the rules (pure) -----------------------------------------------------------------------------
def require_reader(access: Access, not_found: str = PROJECT_NOT_FOUND) -> None:
    """Owners and members read a project's history; another tenant's or an unknown project is
    404 (its existence is not revealed), a non-member in the same tenant 403."""
    if access == "not_found":
        raise NotFound(not_found)
    if access == "forbidden":
        raise Forbidden(NOT_A_MEMBER)


def require_owner(access: Access) -> None:
    """Verification is for the project's owner (a member gets 403, others as for reading)."""
    require_reader(access)
    if access != "owner":
        raise Forbidden(OWNER_ONLY_VERIFY)


@dataclass(frozen=True)
class CallerRef:
    """What the tasks service needs to find the caller's worker, in the tenant of this
    request: a human by ``sub``; an agent by its API key id (``tf_`` keys), else by ``sub``
    and OAuth client (agent tokens)."""

    sub: str
    tenant_id: str
    actor_type: str
    client_id: str | None
    api_key_id: str | None = None

    @classmethod
    def of(cls, identity: Identity) -> CallerRef:
        return cls(
            identity.sub,
            identity.tenant_id,
            identity.actor_type,
            identity.client_id,
            identity.api_key_id,
        )

    def params(self) -> dict[str, str]:
        params = {"sub": self.sub, "tenant_id": self.tenant_id, "actor_type": self.actor_type}
        if self.client_id:
            params["client_id"] = self.client_id
        if self.api_key_id:
            params["api_key_id"] = self.api_key_id
        return params


class TTLCache(Generic[K, V]):
    """A small in-process cache: entries live ``ttl`` seconds, at most ``max_entries`` of them,
    and concurrent misses of one key share a single load (no stampede on the tasks service)."""

    def __init__(
        self,
        ttl: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._values: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._loading: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        now = self.clock()
        cached = self._values.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else has to
            raise
        finally:
            self._loading.pop(key, None)
        future.set_result(value)
        self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        self._values[key] = (self.clock() + self.ttl, value)
        self._values.move_to_end(key)
        while len(self._values) > self.max_entries:
            self._values.popitem(last=False)


class TasksDirectory:
    """The audit service's questions to the tasks service, each answer cached ``ttl`` seconds.

    ``http`` is the one pooled client, created with the audit service's service credential
    (``base_url`` = TASKS_URL). A tasks service that cannot answer is a 503, never a guess."""

    def __init__(self, http: httpx.AsyncClient, ttl: float = 5.0) -> None:
        self.http = http
        self._access: TTLCache[tuple[CallerRef, int], Access] = TTLCache(ttl)
        self._readable: TTLCache[CallerRef, tuple[int, ...]] = TTLCache(ttl)

    async def project_access(self, caller: CallerRef, project_id: int) -> Access:
        async def load() -> Access:
            body = await self._get(f"/internal/tasks/projects/{project_id}/access", caller.params())
            access = body.get("access")
            if access not in ACCESS_VALUES:
                log.error("tasks_access_answer_invalid", body=body)
                raise ServiceUnavailable(TASKS_UNAVAILABLE)
            return cast(Access, access)

        return await self._access.get((caller, project_id), load)

    async def readable_projects(self, caller: CallerRef) -> tuple[int, ...]:
        async def load() -> tuple[int, ...]:
            body = await self._get("/internal/tasks/readable-projects", caller.params())
            return tuple(int(p) for p in body.get("project_ids", []))

        return await self._readable.get(caller, load)

    async def task_project(self, task_id: int) -> tuple[int, str] | None:
        """(project id, tenant id) of a live or deleted task, or None when no such task ever
        existed. Not cached: it is asked only for a task the audit trail has not heard of yet."""
        body = await self._get(f"/internal/tasks/tasks/{task_id}/project", None)
        if body.get("project_id") is None:
            return None
        return int(body["project_id"]), str(body["tenant_id"])

    async def _get(self, path: str, params: dict[str, str] | None) -> dict[str, Any]:
        """The JSON object answered; 503 for anything else (the internal endpoints answer 200
        with an explicit body, so even a 404 means a misrouted or outdated tasks service)."""
        try:
            response = await self.http.get(path, params=params)
        except httpx.HTTPError as exc:
            log.warning("tasks_service_unreachable", path=path, error=type(exc).__name__)
            raise ServiceUnavailable(TASKS_UNAVAILABLE) from exc
        body = response.json() if response.status_code == 200 else None
        if not isinstance(body, dict):
            log.error("tasks_service_error", path=path, status=response.status_code)
            raise ServiceUnavailable(TASKS_UNAVAILABLE)
        return body
