"""Every request-body example of the published OpenAPI document, sent as it is to a live stack
through the gateway (what Swagger UI's "Try it out" sends): each is accepted (2xx) or refused
with a business-rule answer the operation documents (say, 400 "Worker 12 is not a member of
this project"), never a 422, a 415 or a 5xx. Path parameters name real objects of a seeded
user: a project, a task in it, an agent, the agent's membership and a webhook."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

# Refusals a correct example may still meet, when the operation documents them: they depend on
# data (an id that is no member here, a handle or slug already taken, a task not in review).
BUSINESS_RULES = {400, 403, 404, 409, 412}
# Examples that must simply work on fresh data.
MUST_SUCCEED = {"createProject", "updateProject", "createTask", "updateTask", "changeTaskStatus"}


def seed(stack: Stack, token: str) -> dict[str, int]:
    """A project, a task in it, an agent, its membership of the project and a webhook: ids
    for paths."""
    with stack.client(token) as api:
        project = api.post(
            "/api/projects", json={"slug": f"ex-{uuid.uuid4().hex[:8]}", "name": "Ex"}
        )
        assert project.status_code == 201, project.text
        pid = project.json()["id"]
        task = api.post(f"/api/projects/{pid}/tasks", json={"title": "Seeded task"})
        assert task.status_code == 201, task.text
        handle = f"@ex-{uuid.uuid4().hex[:8]}"
        agent = api.post(
            "/api/workers/agents", json={"handle": handle, "name": "Ex", "agent_type": "custom"}
        )
        assert agent.status_code == 201, agent.text
        aid = agent.json()["id"]
        member = api.post(f"/api/projects/{pid}/members", json={"agent_id": aid})
        assert member.status_code == 201, member.text
        hook = api.post(f"/api/projects/{pid}/webhooks", json={"url": "http://127.0.0.1:9/ex"})
        assert hook.status_code == 201, hook.text
    return {
        "project_id": pid,
        "task_id": task.json()["id"],
        "agent_id": aid,
        "member_id": member.json()["id"],
        "webhook_id": hook.json()["id"],
    }


def test_every_documented_request_example_is_accepted(stack: Stack) -> None:
    token = stack.token(f"examples-{uuid.uuid4().hex[:8]}")
    ids = seed(stack, token)
    with stack.client() as anonymous:
        document = anonymous.get("/openapi.json").json()
    sent: list[tuple[str, int, str]] = []
    problems: list[str] = []
    with stack.client(token) as api:
        for path, item in document["paths"].items():
            for method, op in item.items():
                if "requestBody" not in op:
                    continue
                media = op["requestBody"]["content"].get("application/json", {})
                if "example" not in media:
                    problems.append(f"{op['operationId']}: no request-body example")
                    continue
                url = re.sub(r"{(\w+)}", lambda m: str(ids[m.group(1)]), path)
                answer = api.request(method.upper(), url, json=media["example"])
                sent.append((op["operationId"], answer.status_code, answer.text[:200]))
                documented = str(answer.status_code) in op["responses"]
                ok = answer.is_success or (answer.status_code in BUSINESS_RULES and documented)
                if op["operationId"] in MUST_SUCCEED:
                    ok = answer.is_success
                if not ok:
                    problems.append(
                        f"{op['operationId']} {method.upper()} {url} "
                        f"{media['example']} -> {answer.status_code} {answer.text[:300]}"
                    )
    report = "\n".join(f"  {name}: {status} {text}" for name, status, text in sent)
    assert len(sent) >= 10, report
    assert not problems, "\n".join(problems) + "\nall answers:\n" + report
    assert ("createTask", 201) in {(name, status) for name, status, _ in sent}
