"""Filtered lists (a tag, a search, an assignee, a priority, a status in another order, any
later page) have their page chosen by ``tasks.list_page_ids`` (migration 0022) and their rows
read by a statement prepared after a few runs on a connection. Whatever the values and however
often a list is asked for, it is the project's unfiltered list in the same order, filtered and
then paged: checked against that list for every filter, edge values included, every order and
pages past the end, each asked for enough times to run prepared on the service's connections."""

from __future__ import annotations

import itertools
from typing import Any

from tests.integration.tasks_api.conftest import MakeUser, User

ORDERS = list(itertools.product(("created_at", "due_date", "priority", "title"), ("asc", "desc")))
# psycopg prepares a statement on a connection at its 6th run; the service has a few.
RUNS = 8

TITLES = [
    "100% done",
    "1000 done",
    "a_b test",
    "axb test",
    "back\\slash",
    "O'Brien review",
    "Review caps",
    "naïve café",
    "plain",
]


def _seed(alice: User, pid: int, me: int) -> None:
    statuses = ["pending", "in_progress", "review", "completed", "blocked"]
    priorities = ["low", "medium", "high", "critical"]
    tag_sets: list[list[str]] = [["x", "y"], ["it's"], ["x"], [], ["y", "ünï"]]
    for n in range(27):
        fields: dict[str, Any] = {
            "title": f"{TITLES[n % len(TITLES)]} #{n // len(TITLES)}",
            "priority": priorities[n % 4],
            "tags": tag_sets[n % 5],
        }
        if n % 3:
            fields["due_date"] = f"2030-01-{1 + n % 7:02d}T00:00:00Z"
        if n % 2:
            fields["assignee_id"] = me
        task = alice.task(pid, **fields)
        if n % 5:
            alice.patch(f"/api/tasks/{task['id']}/status", {"status": statuses[n % 5]})


def _keep(task: dict[str, Any], params: dict[str, Any]) -> bool:
    search = params.get("search")
    tags = [t.strip() for t in params.get("tags", "").split(",") if t.strip()]
    return (
        task["status"] == params.get("status", task["status"])
        and task["priority"] == params.get("priority", task["priority"])
        and task["assignee_id"] == params.get("assignee_id", task["assignee_id"])
        and (not search or search.lower() in task["title"].lower())
        and all(tag in task["tags"] for tag in tags)
        and (
            "has_due_date" not in params or (task["due_date"] is not None) == params["has_due_date"]
        )
    )


def test_filtered_pages_match_the_unfiltered_list(make_user: MakeUser) -> None:
    alice = make_user()
    pid = alice.default_project
    me = alice.get(f"/api/projects/{pid}/members").json()[0]["worker_id"]
    _seed(alice, pid, me)

    def page(**params: Any) -> list[int]:
        answers = set()
        for _ in range(RUNS):
            resp = alice.get(f"/api/projects/{pid}/tasks", params=params)
            assert resp.status_code == 200, (params, resp.text)
            answers.add(tuple(t["id"] for t in resp.json()))
        assert len(answers) == 1, (params, answers)
        return list(answers.pop())

    filters: list[dict[str, Any]] = [
        {"tags": "x"},
        {"tags": "x,y"},
        {"tags": "it's"},
        {"tags": "ünï"},
        {"tags": "nobody"},
        {"search": "%"},
        {"search": "_"},
        {"search": "\\"},
        {"search": "100%"},
        {"search": "a_b"},
        {"search": "'"},
        {"search": "REVIEW"},
        {"search": "CAFÉ"},
        {"assignee_id": me},
        {"assignee_id": 2**63 - 1},
        {"priority": "critical"},
        {"status": "review"},
        {"status": "in_progress", "has_due_date": True},
        {"tags": "y", "search": "#", "priority": "low", "has_due_date": False},
        {"tags": "x", "assignee_id": me, "status": "pending"},
    ]
    paged = [{"tags": "x"}, {"search": "REVIEW"}, {"assignee_id": me}, {"priority": "critical"}]
    checked = 0
    for (sort_by, sort_order), params in itertools.product(ORDERS, filters):
        order = {"sort_by": sort_by, "sort_order": sort_order}
        everything = alice.get(f"/api/projects/{pid}/tasks", params={**order, "limit": 100}).json()
        expected = [t["id"] for t in everything if _keep(t, params)]
        query = {**order, **params}
        if params in paged:
            for limit, offset in ((1, 0), (2, 1), (5, 3), (50, 0), (50, len(expected)), (7, 100)):
                got = page(**query, limit=limit, offset=offset)
                assert got == expected[offset : offset + limit], (query, limit, offset)
                checked += 1
        assert page(**query, limit=50) == expected[:50], query
        checked += 1
    assert checked > len(ORDERS) * len(filters)


def test_filtered_lists_keep_their_access_answers(make_user: MakeUser) -> None:
    alice = make_user(tenant="tenant-a")
    neighbour = make_user(tenant="tenant-a")
    mallory = make_user(tenant="tenant-b")
    pid = alice.default_project
    alice.task(pid, title="secret review", tags=["secret"])
    answers = {"tags": "secret", "search": "review", "offset": 1}
    for key, value in answers.items():
        params = {key: value, "sort_by": "title"}
        for _ in range(RUNS):
            resp = neighbour.get(f"/api/projects/{pid}/tasks", params=params)
            assert resp.status_code == 403, resp.text
            resp = mallory.get(f"/api/projects/{pid}/tasks", params=params)
            assert resp.status_code == 404 and resp.json()["error"] == "Project not found"
        titles = [t["title"] for t in alice.get(f"/api/projects/{pid}/tasks", params=params).json()]
        assert titles == ([] if key == "offset" else ["secret review"])


def test_filtered_lists_at_the_edges_of_their_inputs(make_user: MakeUser) -> None:
    """Values at and past each bound of a filtered list: 200 with the right page or a 422 naming
    the field, never a 500."""
    alice = make_user()
    pid = alice.default_project
    kept = alice.task(pid, title="edge", tags=["t"])["id"]
    ok = [
        ({"tags": "t", "offset": 1_000_000}, []),
        ({"tags": "t", "limit": 100}, [kept]),
        ({"tags": ",".join(["t"] * 1000)[:2000].rstrip(",")}, [kept]),  # 1,000 tags, all "t"
        ({"tags": " , t ,, "}, [kept]),
        ({"tags": "T"}, []),  # exact match
        ({"search": "%" * 200, "tags": "t"}, []),
        ({"search": "edge", "priority": "medium", "assignee_id": 0}, [kept]),  # 0: no filter
    ]
    for params, expected in ok:
        resp = alice.get(f"/api/projects/{pid}/tasks", params=params)
        assert resp.status_code == 200, (params, resp.text)
        assert [t["id"] for t in resp.json()] == expected, params
    refused = [
        ({"tags": "t", "offset": 1_000_001}, "offset"),
        ({"tags": "t", "limit": 101}, "limit"),
        ({"tags": "t" * 2001}, "tags"),
        ({"tags": "t", "assignee_id": 2**63}, "assignee_id"),
        ({"tags": "t", "assignee_id": -1}, "assignee_id"),
        ({"tags": "t", "sort_by": "id"}, "sort_by"),
    ]
    for params, field in refused:
        resp = alice.get(f"/api/projects/{pid}/tasks", params=params)
        assert resp.status_code == 422 and field in resp.text, (params, resp.text)
