"""Reference behaviour of the task endpoints (§1.6), over real HTTP with real tokens."""

from __future__ import annotations

from tests.integration.tasks_api.conftest import MakeUser, Outbox

READ_FIELDS = {
    "id", "title", "description", "status", "priority", "progress_percent", "tags", "due_date",
    "is_recurring", "recurrence_pattern", "max_occurrences", "recurring_root_id",
    "recurrence_trigger", "clone_subtasks_on_recur", "has_spawned_next", "spawn_count",
    "project_id", "assignee_id", "assignee_handle", "parent_task_id", "created_by_id",
    "started_at", "completed_at", "created_at", "updated_at", "subtasks",
}  # fmt: skip
LIST_FIELDS = {
    "id", "title", "status", "priority", "progress_percent", "assignee_id", "assignee_handle",
    "due_date", "created_at", "parent_task_id", "subtask_count", "is_recurring",
}  # fmt: skip


def test_create_get_and_list_task(make_user: MakeUser, outbox: Outbox) -> None:
    alice = make_user()
    pid = alice.default_project
    outbox.start()
    created = alice.post(
        f"/api/projects/{pid}/tasks",
        {
            "title": "Write docs",
            "description": "All of them",
            "priority": "high",
            "tags": ["docs", "v1"],
            "due_date": "2025-12-31",
        },
    )
    assert created.status_code == 201, created.text
    task = created.json()
    assert set(task) >= READ_FIELDS
    assert task["status"] == "pending" and task["progress_percent"] == 0
    assert task["due_date"] == "2025-12-31T00:00:00+00:00"
    assert task["tags"] == ["docs", "v1"]
    assert task["subtasks"] == [] and task["spawn_count"] == 0
    assert created.headers["ETag"]
    assert created.headers["Location"] == f"/api/tasks/{task['id']}"
    events = outbox.new()
    assert [(e["entity_type"], e["action"], e["entity_id"]) for e in events] == [
        ("task", "created", task["id"])
    ]
    assert events[0]["details"]["title"] == "Write docs"

    got = alice.get(f"/api/tasks/{task['id']}")
    assert got.status_code == 200
    assert got.json() == task
    assert got.headers["ETag"] == created.headers["ETag"]

    listed = alice.get(f"/api/projects/{pid}/tasks").json()
    assert len(listed) == 1
    item = listed[0]
    assert set(item) >= LIST_FIELDS
    # Fixes: list items carry tags and description.
    assert item["tags"] == ["docs", "v1"] and item["description"] == "All of them"


def test_workflow_through_the_api(make_user: MakeUser, outbox: Outbox) -> None:
    alice = make_user()
    pid = alice.default_project
    tid = alice.task(pid)["id"]
    outbox.start()
    bad = alice.patch(f"/api/tasks/{tid}/progress", {"percent": 10})
    assert bad.status_code == 400
    assert bad.json()["error"] == "Can only update progress for in_progress tasks"
    started = alice.patch(f"/api/tasks/{tid}/status", {"status": "in_progress"}).json()
    assert started["started_at"] is not None
    progress = alice.patch(f"/api/tasks/{tid}/progress", {"percent": 60, "note": "half"})
    assert progress.status_code == 200 and progress.json()["progress_percent"] == 60
    review = alice.patch(f"/api/tasks/{tid}/status", {"status": "review"}).json()
    assert review["status"] == "review"
    rejected = alice.post(f"/api/tasks/{tid}/reject", {"reason": "needs tests"}).json()
    assert rejected["status"] == "in_progress" and rejected["progress_percent"] == 60
    alice.patch(f"/api/tasks/{tid}/status", {"status": "review"})
    approved = alice.post(f"/api/tasks/{tid}/approve").json()
    assert approved["status"] == "completed" and approved["progress_percent"] == 100
    assert approved["completed_at"] is not None
    assert approved["started_at"] == started["started_at"]
    again = alice.post(f"/api/tasks/{tid}/approve")
    assert again.status_code == 400
    assert again.json()["error"] == "Can only approve tasks in 'review' status"
    wrong = alice.patch(f"/api/tasks/{tid}/status", {"status": "blocked"})
    assert wrong.status_code == 400
    assert wrong.json()["error"] == (
        "Invalid status transition from 'completed' to 'blocked'. Valid transitions: ['review']"
    )
    actions = [(e["action"], e["details"]) for e in outbox.new()]
    assert actions == [
        ("status_changed", {"before": "pending", "after": "in_progress"}),
        ("progress_updated", {"before": 0, "after": 60, "note": "half"}),
        ("status_changed", {"before": "in_progress", "after": "review"}),
        (
            "rejected",
            {"reason": "needs tests", "from_status": "review", "to_status": "in_progress"},
        ),
        ("status_changed", {"before": "in_progress", "after": "review"}),
        ("approved", {"from_status": "review", "to_status": "completed"}),
    ]


def test_every_task_route_is_documented(tasks_url: str) -> None:
    import httpx

    spec = httpx.get(f"{tasks_url}/openapi.json").json()
    expected = {
        "/api/tasks/recent": {"get"},
        "/api/projects/{project_id}/tasks": {"get", "post"},
        "/api/tasks/{task_id}": {"get", "put", "delete"},
        "/api/tasks/{task_id}/status": {"patch"},
        "/api/tasks/{task_id}/progress": {"patch"},
        "/api/tasks/{task_id}/assign": {"patch"},
        "/api/tasks/{task_id}/subtasks": {"post"},
        "/api/tasks/{task_id}/approve": {"post"},
        "/api/tasks/{task_id}/reject": {"post"},
    }
    for path, methods in expected.items():
        assert set(spec["paths"][path]) >= methods, path
        for method in methods:
            op = spec["paths"][path][method]
            ok = next(code for code in op["responses"] if code.startswith("2"))
            assert "example" in op["responses"][ok]["content"]["application/json"], (path, method)
            assert "401" in op["responses"] and "422" in op["responses"], (path, method)
    task_read = spec["components"]["schemas"]["TaskRead"]["properties"]
    assert "max_occurrences" in task_read and "description" in task_read["max_occurrences"]
    assert "total number of tasks" in task_read["max_occurrences"]["description"]
