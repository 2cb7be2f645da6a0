"""What a client sees at ``/``, ``/docs``, ``/redoc`` and in ``/openapi.json`` is "TaskFlow API"
with the same introduction in every mode: each split service (which keeps its own name in
``info.x-service`` and GET /'s ``service``), the all-in-one router of ``taskflow dev`` /
``serve all``, and the gateway's merged document."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from taskflow_cli.stack import SERVICES, all_in_one
from taskflow_core import __version__
from taskflow_core.config import Settings
from taskflow_core.openapi import API_INTRODUCTION, API_TITLE, build_spec

from tests.e2e.conftest import load_render

SETTINGS = Settings(database_url="postgresql://nobody@127.0.0.1:1/none")
SECTIONS = (
    "Getting a token",
    "Errors",
    "ETag and If-Match",
    "Idempotency-Key",
    "Audit follows writes",
)


@pytest.fixture(scope="module", autouse=True)
def structlog_as_it_was() -> Iterator[None]:
    """``create_app`` configures structlog anew, with a new processor list. A logger cached
    with the old list (a lag warning logged earlier in this worker) would then escape a later
    test's ``capture_logs`` (test_event_loop_lag failed so in a full run): put it back."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def sections(markdown: str) -> list[str]:
    return re.findall(r"^## (.+)$", markdown, flags=re.MULTILINE)


def section(markdown: str, title: str) -> str:
    body = markdown.split(f"## {title}\n", 1)[1]
    return body.split("\n## ", 1)[0]


def test_the_introduction_covers_what_a_first_caller_needs() -> None:
    assert API_TITLE == "TaskFlow API"
    assert sections(API_INTRODUCTION) == list(SECTIONS)
    token = section(API_INTRODUCTION, "Getting a token")
    for said in ("taskflow token --sub alice", "taskflow dev", "id_token", "`tf_`", "Bearer"):
        assert said in token, said
    errors = section(API_INTRODUCTION, "Errors")
    for said in ('"error"', '"detail"', '"status_code"', "RFC 9457", "422", "loc", "415", "401"):
        assert said in errors, said
    etag = section(API_INTRODUCTION, "ETag and If-Match")
    assert "412" in etag and "optional" in etag.lower()
    idem = section(API_INTRODUCTION, "Idempotency-Key")
    assert "Idempotent-Replayed: true" in idem and "24 h" in idem and "optional" in idem.lower()
    audit = section(API_INTRODUCTION, "Audit follows writes")
    assert "OUTBOX_RELAY_INTERVAL" in audit and "/audit" in audit


def test_build_spec_opens_with_the_introduction() -> None:
    document = build_spec(API_TITLE, "9.9.9", [])
    assert document["info"]["title"] == "TaskFlow API"
    assert document["info"]["description"] == API_INTRODUCTION
    assert "x-service" not in document["info"]


PAGES = ("/", "/openapi.json", "/docs", "/redoc")


async def _pages(app: Any) -> dict[str, httpx.Response]:
    # httpx's ASGI transport sends no lifespan events: nothing starts, no database is reached.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        return {page: await client.get(page) for page in PAGES}


@pytest.fixture(scope="module")
def pages() -> dict[str, dict[str, httpx.Response]]:
    """What each split service answers at ``/``, ``/openapi.json``, ``/docs``, ``/redoc``."""
    return {name: asyncio.run(_pages(spec.create_app(SETTINGS))) for name, spec in SERVICES.items()}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_split_service_is_the_taskflow_api(
    pages: dict[str, dict[str, httpx.Response]], name: str
) -> None:
    answers = pages[name]
    info: dict[str, Any] = answers["/openapi.json"].json()["info"]
    assert info["title"] == "TaskFlow API"
    assert info["x-service"] == name
    assert sections(info["description"]) == [*SECTIONS, "This service"]
    assert f"taskflow serve {name}" in info["description"]
    assert answers["/"].json() == {
        "name": "TaskFlow API",
        "version": __version__,
        "docs": "/docs",
        "health": "/health",
        "chatkit": "/chatkit (not configured)",
        "service": name,
    }
    for page in ("/docs", "/redoc"):
        assert "<title>TaskFlow API</title>" in answers[page].text


def test_the_all_in_one_and_gateway_documents_are_the_taskflow_api() -> None:
    import orjson

    merged = orjson.loads(all_in_one(SETTINGS).openapi)
    gateway = orjson.loads(load_render().merged_openapi())
    for document in (merged, gateway):
        assert document["info"]["title"] == "TaskFlow API"
        assert document["info"]["description"] == API_INTRODUCTION
        assert "x-service" not in document["info"]


def test_the_introduction_agrees_with_the_documented_headers(
    pages: dict[str, dict[str, httpx.Response]],
) -> None:
    # The header's own schema is registered by the code that enforces it (tasks service).
    post = pages["tasks"]["/openapi.json"].json()["paths"]["/api/projects"]["post"]
    (key,) = [p for p in post["parameters"] if p["name"] == "Idempotency-Key"]
    idem = section(API_INTRODUCTION, "Idempotency-Key")
    assert f"1 to {key['schema']['maxLength']} printable ASCII" in idem
    assert "(24 h)" in key["schema"]["description"]


def test_operations_with_a_body_document_415(
    pages: dict[str, dict[str, httpx.Response]],
) -> None:
    for answers in pages.values():
        paths = answers["/openapi.json"].json()["paths"]
        for path, item in paths.items():
            for method, op in item.items():
                has_body = "requestBody" in op
                assert ("415" in op["responses"]) == has_body, (method, path)
                if has_body:
                    assert "application/json" in op["responses"]["415"]["description"]
