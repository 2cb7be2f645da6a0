"""Every service, as a real process: health, readiness, error shape, request ids, access log."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import StartService

SERVICES = ["tasks", "audit", "auth-verifier"]


@pytest.mark.parametrize("name", SERVICES)
def test_health_ready_root_and_docs(name: str, start_service: StartService, db_url: str) -> None:
    svc = start_service(name, DATABASE_URL=db_url)
    health = httpx.get(f"{svc.url}/health")
    assert health.status_code == 200
    assert health.json()["status"] == "healthy"
    ready = httpx.get(f"{svc.url}/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["database"] == "connected"
    root = httpx.get(f"{svc.url}/").json()
    assert root["docs"] == "/docs"
    # Each split service is a part of the one TaskFlow API, and says which part it is.
    assert (root["name"], root["service"]) == ("TaskFlow API", name)
    spec = httpx.get(f"{svc.url}/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert (spec["info"]["title"], spec["info"]["x-service"]) == ("TaskFlow API", name)
    assert "## Getting a token" in spec["info"]["description"]
    docs = httpx.get(f"{svc.url}/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert "<title>TaskFlow API</title>" in docs.text
    assert httpx.get(f"{svc.url}/docs/static/swagger-ui-bundle.js").status_code == 200
    assert httpx.get(f"{svc.url}/redoc/static/redoc.standalone.js").status_code == 200


@pytest.mark.parametrize("name", SERVICES)
def test_unknown_route_and_method_use_error_shape(
    name: str, start_service: StartService, db_url: str
) -> None:
    svc = start_service(name, DATABASE_URL=db_url)
    missing = httpx.get(f"{svc.url}/no/such/route")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "Not Found",
        "detail": "Not Found",
        "status_code": 404,
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
    }
    assert missing.headers["X-Request-Id"]
    wrong = httpx.delete(f"{svc.url}/health")
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "Method Not Allowed"


def test_request_id_echoed_and_one_access_line_each(
    start_service: StartService, db_url: str
) -> None:
    svc = start_service("tasks", DATABASE_URL=db_url)
    given = httpx.get(f"{svc.url}/health", headers={"X-Request-Id": "abc-123"})
    assert given.headers["X-Request-Id"] == "abc-123"
    made = httpx.get(f"{svc.url}/nothing-here")
    assert len(made.headers["X-Request-Id"]) == 32
    svc.stop()
    assert svc.log_path is not None
    lines = [
        json.loads(line) for line in svc.log_path.read_text().splitlines() if line.startswith("{")
    ]
    access = [line for line in lines if line.get("event") == "request"]
    by_id = {}
    for line in access:
        by_id.setdefault(line["request_id"], []).append(line)
    assert len(by_id["abc-123"]) == 1
    assert by_id["abc-123"][0]["path"] == "/health"
    assert by_id["abc-123"][0]["status"] == 200
    assert "duration_ms" in by_id["abc-123"][0]
    assert len(by_id[made.headers["X-Request-Id"]]) == 1
    assert by_id[made.headers["X-Request-Id"]][0]["status"] == 404
