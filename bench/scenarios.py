"""The scenarios of issue 8: what each sends, to which service, and what it needs seeded."""

from __future__ import annotations

from dataclasses import dataclass

from bench.seed import SeedData
from bench.wrk import Request

CONTROL = "control"


@dataclass(frozen=True)
class Scenario:
    name: str
    service: str  # the service whose CPU per request is reported
    request: Request
    description: str
    gateway: bool = True  # also run through nginx
    reset_status: bool = False  # bring the toggled tasks back to in_progress before each run
    target: float | None = None  # issue 20's CPU/request ceiling, as a multiple of the control


def _list(pid: int, query: str) -> str:
    return f"/api/projects/{pid}/tasks?{query}"


def build_scenarios(data: SeedData | None, control_ids: tuple[int, ...]) -> list[Scenario]:
    """Every scenario that the seed data allows (the control and /verify need no seed)."""
    scenarios = [
        Scenario(
            "control",
            CONTROL,
            Request("GET", "/tasks/{id}", ids=control_ids),
            "bare Falcon + psycopg_pool: one SELECT by primary key",
            gateway=False,
        ),
        Scenario(
            "control_checked_tx",
            CONTROL,
            Request("GET", "/checked-tx/tasks/{id}", ids=control_ids),
            "the control's SELECT with the services' pattern: connection check on checkout + "
            "BEGIN/COMMIT (informative)",
            gateway=False,
        ),
        Scenario(
            "control_pipeline_tx",
            CONTROL,
            Request("GET", "/checked-pipeline-tx/tasks/{id}", ids=control_ids),
            "as control_checked_tx inside conn.pipeline() (the tasks service's _unit)",
            gateway=False,
        ),
        Scenario(
            "control_autocommit",
            CONTROL,
            Request("GET", "/autocommit/tasks/{id}", ids=control_ids),
            "the control's SELECT on an autocommit connection: one round trip (informative)",
            gateway=False,
        ),
    ]
    pid = None if data is None else (data.bulk_list_project_id or data.list_project_id)
    if data is not None and data.read_task_ids and pid is not None:
        read = tuple(data.bulk_read_task_ids or data.read_task_ids)
        scenarios += [
            Scenario(
                "get_task",
                "tasks",
                Request("GET", "/api/tasks/{id}", ids=read),
                "GET /api/tasks/{id}",
                target=1.5,
            ),
            Scenario(
                "list_tasks",
                "tasks",
                Request("GET", _list(pid, "limit=50"), ids=read[:1]),
                "GET /api/projects/{pid}/tasks?limit=50 (newest first)",
                target=2.5,
            ),
            Scenario(
                "list_tasks_filtered",
                "tasks",
                Request(
                    "GET",
                    _list(pid, "status=in_progress&has_due_date=true&limit=50"),
                    ids=read[:1],
                ),
                "… ?status=in_progress&has_due_date=true&limit=50",
                target=2.5,
            ),
            Scenario(
                "list_tasks_sorted",
                "tasks",
                Request(
                    "GET", _list(pid, "sort_by=priority&sort_order=desc&limit=50"), ids=read[:1]
                ),
                "… ?sort_by=priority&sort_order=desc&limit=50",
                target=2.5,
            ),
            Scenario(
                "list_tasks_filtered_sorted",
                "tasks",
                Request(
                    "GET",
                    _list(pid, "tags=backend&sort_by=due_date&sort_order=asc&limit=50"),
                    ids=read[:1],
                ),
                "… ?tags=backend&sort_by=due_date&sort_order=asc&limit=50",
                target=2.5,
            ),
            Scenario(
                "list_tasks_search",
                "tasks",
                Request("GET", _list(pid, "search=review&limit=50"), ids=read[:1]),
                "… ?search=review&limit=50 (title ILIKE)",
                target=2.5,
            ),
        ]
    if data is not None and data.write_project_id is not None:
        scenarios.append(
            Scenario(
                "create_task",
                "tasks",
                Request(
                    "POST",
                    f"/api/projects/{data.write_project_id}/tasks",
                    body='{"title": "bench task {n}", "priority": "high", "tags": ["bench"]}',
                    ids=(0,),
                ),
                "POST /api/projects/{pid}/tasks (+ outbox event)",
                target=2.5,
            )
        )
    if data is not None and data.status_task_ids:
        scenarios.append(
            Scenario(
                "patch_status",
                "tasks",
                Request(
                    "PATCH",
                    "/api/tasks/{id}/status",
                    body='{"status": "{alt:blocked|in_progress}"}',
                    ids=tuple(data.status_task_ids),
                ),
                "PATCH /api/tasks/{id}/status (in_progress ↔ blocked)",
                reset_status=True,
                target=2.0,
            )
        )
    if data is not None and data.progress_task_ids:
        scenarios.append(
            Scenario(
                "patch_progress",
                "tasks",
                Request(
                    "PATCH",
                    "/api/tasks/{id}/progress",
                    body='{"percent": {pct}, "note": "bench"}',
                    ids=tuple(data.progress_task_ids),
                ),
                "PATCH /api/tasks/{id}/progress",
                target=2.0,
            )
        )
    if data is not None and data.audit_task_ids:
        scenarios.append(
            Scenario(
                "task_audit",
                "audit",
                Request("GET", "/api/tasks/{id}/audit", ids=tuple(data.audit_task_ids)),
                "GET /api/tasks/{id}/audit (~10 entries each)",
                target=2.0,
            )
        )
    scenarios.append(
        Scenario(
            "verify",
            "auth-verifier",
            Request("GET", "/verify", ids=(0,)),
            "GET /verify (forward-auth, RS256, cached key)",
            gateway=False,  # internal: the gateway calls it on every /api request instead
            target=1.0,
        )
    )
    return scenarios
