"""Seed data for the scenarios, created through the public API (so every row is one the services
themselves would write, audited through the outbox)."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.procs import BenchError

BENCH_TENANT = "bench-tenant"
PRIORITIES = ("low", "medium", "high", "critical")
TAGS = ("backend", "frontend", "infra", "docs", "bug", "feature")
WORDS = ("report", "deploy", "review", "migrate", "design", "refactor", "test", "release")


class NotImplementedYet(BenchError):
    """The endpoint a scenario needs answers 404/405: its service has not landed yet."""


@dataclass
class SeedData:
    """What the scenarios address: ids created by the seed, per purpose."""

    user_sub: str
    token: str
    list_project_id: int | None = None
    write_project_id: int | None = None
    read_task_ids: list[int] = field(default_factory=list)
    status_task_ids: list[int] = field(default_factory=list)
    progress_task_ids: list[int] = field(default_factory=list)
    audit_task_ids: list[int] = field(default_factory=list)
    # --scale large: reads go to the bulk-loaded rows instead of the API-seeded ones.
    bulk_read_task_ids: list[int] = field(default_factory=list)
    bulk_list_project_id: int | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "list_project_id": self.list_project_id,
            "write_project_id": self.write_project_id,
            "read_tasks": len(self.read_task_ids),
            "status_tasks": len(self.status_task_ids),
            "progress_tasks": len(self.progress_task_ids),
            "audit_tasks": len(self.audit_task_ids),
            "bulk_read_tasks": len(self.bulk_read_task_ids),
            "bulk_list_project_id": self.bulk_list_project_id,
            "notes": self.notes,
        }


def bench_token(issuer: Any, sub: str = "bench-user-1") -> str:
    return str(
        issuer.token(
            sub,
            email=f"{sub}@bench.test",
            name=f"Bench {sub}",
            tenant_id=BENCH_TENANT,
            expires_in=6 * 3600,
        )
    )


def route_missing(resp: httpx.Response) -> bool:
    """An unknown route (the service has not implemented it), not a missing resource."""
    if resp.status_code == 405:
        return True
    if resp.status_code != 404:
        return False
    try:
        error = resp.json().get("error")
    except ValueError:
        return True
    return error in ("Not Found", None)


def _check(resp: httpx.Response, what: str, expect: Iterable[int] = (200, 201)) -> Any:
    if route_missing(resp):
        raise NotImplementedYet(
            f"{what}: {resp.request.method} {resp.request.url.path} answers "
            f"{resp.status_code} {resp.text[:120]} (not implemented yet?)"
        )
    if resp.status_code not in set(expect):
        raise BenchError(
            f"{what}: {resp.request.method} {resp.request.url.path} → {resp.status_code} "
            f"{resp.text[:500]}"
        )
    return resp.json() if resp.content else None


async def gather_limited(
    factories: Iterable[Callable[[], Awaitable[Any]]], limit: int = 16
) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def run(factory: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await factory()

    return list(await asyncio.gather(*(run(f) for f in factories)))


def task_body(i: int, rng: random.Random) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": f"{rng.choice(WORDS)} {rng.choice(WORDS)} #{i}",
        "description": "Seeded by bench/seed.py",
        "priority": rng.choice(PRIORITIES),
        "tags": rng.sample(TAGS, k=rng.randint(0, 3)),
    }
    if rng.random() < 0.7:
        due = datetime(2027, 1, 1, tzinfo=UTC) + timedelta(hours=rng.randint(0, 24 * 365))
        body["due_date"] = due.isoformat()
    return body


class ApiSeeder:
    """Creates projects and tasks through the tasks service, then moves some through the
    workflow so lists, filters and audit histories have realistic content."""

    def __init__(self, client: httpx.AsyncClient, *, seed: int = 8) -> None:
        self.client = client
        self.rng = random.Random(seed)

    async def project(self, slug: str, name: str) -> int:
        resp = await self.client.post("/api/projects", json={"slug": slug, "name": name})
        return int(_check(resp, "create project")["id"])

    async def task(self, project_id: int, body: dict[str, Any]) -> int:
        resp = await self.client.post(f"/api/projects/{project_id}/tasks", json=body)
        return int(_check(resp, "create task")["id"])

    async def status(self, task_id: int, status: str) -> dict[str, Any]:
        resp = await self.client.patch(f"/api/tasks/{task_id}/status", json={"status": status})
        return dict(_check(resp, "change status"))

    async def progress(self, task_id: int, percent: int) -> dict[str, Any]:
        resp = await self.client.patch(
            f"/api/tasks/{task_id}/progress", json={"percent": percent, "note": "bench"}
        )
        return dict(_check(resp, "update progress"))

    async def tasks(self, project_id: int, count: int, start: int = 0) -> list[int]:
        bodies = [task_body(start + i, self.rng) for i in range(count)]
        return await gather_limited(
            [lambda b=b: self.task(project_id, b) for b in bodies]  # type: ignore[misc]
        )

    async def seed(self, data: SeedData, *, list_tasks: int, write_tasks: int) -> SeedData:
        started = time.monotonic()
        # First call provisions the caller (worker + Default project).
        _check(await self.client.get("/api/projects"), "list projects")
        # Slugs unique per run: a reused database (--scale large) already has earlier ones.
        suffix = secrets.token_hex(3)
        data.list_project_id = await self.project(f"bench-list-{suffix}", "Bench list")
        data.write_project_id = await self.project(f"bench-write-{suffix}", "Bench write")
        listed = await self.tasks(data.list_project_id, list_tasks)
        data.read_task_ids = listed
        # A third of the listed tasks in progress, some of them blocked or completed, so the
        # status filter has matches and tasks carry more than one audit entry.
        moved = listed[: len(listed) // 3]
        await gather_limited([lambda t=t: self.status(t, "in_progress") for t in moved])  # type: ignore[misc]
        await gather_limited(
            [lambda t=t: self.status(t, "completed") for t in moved[: len(moved) // 4]]  # type: ignore[misc]
        )
        data.status_task_ids = await self.tasks(data.write_project_id, write_tasks, 10_000)
        data.progress_task_ids = await self.tasks(data.write_project_id, write_tasks, 20_000)
        await gather_limited(
            [
                lambda t=t: self.status(t, "in_progress")  # type: ignore[misc]
                for t in data.status_task_ids + data.progress_task_ids
            ]
        )
        # Audit histories of ~10 entries: created, started, then progress updates.
        data.audit_task_ids = listed[len(listed) // 3 : len(listed) // 3 + 100]
        await gather_limited(
            [lambda t=t: self.status(t, "in_progress") for t in data.audit_task_ids]  # type: ignore[misc]
        )
        await gather_limited(
            [
                lambda t=t, p=p: self.progress(t, p)  # type: ignore[misc]
                for t in data.audit_task_ids
                for p in range(10, 90, 10)
            ]
        )
        data.notes.append(f"API seed took {time.monotonic() - started:.1f}s")
        return data

    async def reset_status_tasks(self, task_ids: list[int]) -> None:
        """Bring toggled tasks back to in_progress (a wrk run may stop on either status)."""

        async def reset(task_id: int) -> None:
            resp = await self.client.get(f"/api/tasks/{task_id}")
            if _check(resp, "get task")["status"] != "in_progress":
                await self.status(task_id, "in_progress")

        await gather_limited([lambda t=t: reset(t) for t in task_ids])  # type: ignore[misc]


async def wait_for_audit(
    client: httpx.AsyncClient, task_id: int, at_least: int, within_s: float = 60.0
) -> int:
    """Wait until the outbox relay delivered ``at_least`` entries of ``task_id``."""
    deadline = time.monotonic() + within_s
    count = 0
    while time.monotonic() < deadline:
        resp = await client.get(f"/api/tasks/{task_id}/audit", params={"limit": 100})
        if resp.status_code == 200:
            body = resp.json()
            items = body if isinstance(body, list) else body.get("items", body.get("entries", []))
            count = len(items)
            if count >= at_least:
                return count
        elif resp.status_code in (404, 405) and time.monotonic() + 5 > deadline:
            break
        await asyncio.sleep(0.5)
    return count
