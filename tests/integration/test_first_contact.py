"""What a newcomer meets first on a real `taskflow dev` stack (issue 17, items 3 and 4): the
root and the docs say "TaskFlow API" and open with an introduction; a bad bearer, a body that
is not JSON and malformed JSON get messages that say what is wrong."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from tests.support.postgres import create_database, drop_database
from tests.support.processes import free_port

INTRO_HEADINGS = (
    "## Getting a token",
    "## Errors",
    "## ETag and If-Match",
    "## Idempotency-Key",
    "## Audit follows writes",
)


@dataclass(frozen=True)
class DevStack:
    url: str
    token: str  # the one the banner prints
    database_url: str

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    def count(self, table: str) -> int:
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture(scope="module")
def dev(
    pg_admin_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevStack]:
    """One `taskflow dev` process for the module, on its own migrated database."""
    database_url = create_database(pg_admin_url, template=template_db)
    folder = tmp_path_factory.mktemp("first-contact")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"LOG_LEVEL", "SERVICE_SECRET"}},
        "DATABASE_URL": database_url,
        "TASKFLOW_DATA_DIR": str(folder / "dev"),
    }
    log = folder / "dev.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "taskflow_cli.main", "dev", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        token = None
        deadline = time.monotonic() + 60
        while token is None and time.monotonic() < deadline and proc.poll() is None:
            found = re.search(r"export TOKEN=(\S+)", log.read_text(errors="replace"))
            with contextlib.suppress(httpx.HTTPError):
                if found and httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    token = found.group(1)
            time.sleep(0.2)
        assert token, log.read_text(errors="replace")[-3000:]
        yield DevStack(base, token, database_url)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        drop_database(pg_admin_url, database_url)


# --- item 3: the name and the introduction ---------------------------------------------------


def test_root_is_the_taskflow_api(dev: DevStack) -> None:
    body = httpx.get(f"{dev.url}/").json()
    assert body["name"] == "TaskFlow API"
    assert body["docs"] == "/docs" and body["health"] == "/health"
    assert body["chatkit"] == "/chatkit (not configured)"
    assert body["version"]


def test_docs_pages_and_document_open_with_the_introduction(dev: DevStack) -> None:
    document = httpx.get(f"{dev.url}/openapi.json").json()
    assert document["info"]["title"] == "TaskFlow API"
    intro = document["info"]["description"]
    for heading in INTRO_HEADINGS:
        assert heading in intro, heading
    assert "taskflow token --sub alice" in intro
    for page in ("/docs", "/redoc"):
        html = httpx.get(f"{dev.url}{page}").text
        assert "<title>TaskFlow API</title>" in html, page


# --- item 4: error texts ---------------------------------------------------------------------


def _refusal(dev: DevStack, credential: str) -> dict[str, object]:
    response = httpx.get(
        f"{dev.url}/api/projects", headers={"Authorization": f"Bearer {credential}"}
    )
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body: dict[str, object] = response.json()
    assert body["error"] == body["detail"] and body["status_code"] == 401
    return body


def test_the_readme_placeholder_token_is_called_malformed(dev: DevStack) -> None:
    body = _refusal(dev, "<token>")
    assert "Userinfo" not in str(body["error"])
    assert str(body["error"]).startswith("Invalid token: malformed"), body


def test_a_cut_off_token_is_called_a_malformed_jwt(dev: DevStack) -> None:
    header, payload, _ = dev.token.split(".")
    for cut in (header, f"{header}.{payload[:10]}", dev.token[:-1] + "."):
        body = _refusal(dev, cut)
        assert str(body["error"]).startswith("Invalid JWT: malformed"), (cut, body)


def test_an_opaque_token_the_sso_does_not_know_is_invalid(dev: DevStack) -> None:
    # The dev stack is its own SSO: it has no userinfo endpoint (404).
    body = _refusal(dev, "an0paque-access-token")
    assert str(body["error"]).startswith("Token invalid or expired"), body


def test_a_form_body_is_415_naming_json(dev: DevStack) -> None:
    before = dev.count("tasks.projects")
    # What `curl -d '{"slug": ...}'` sends: a JSON text labelled as a form.
    form = httpx.post(
        f"{dev.url}/api/projects",
        content=b'{"slug": "from-curl", "name": "From curl"}',
        headers=dev.headers(**{"Content-Type": "application/x-www-form-urlencoded"}),
    )
    text = httpx.post(
        f"{dev.url}/api/projects",
        content=b'{"slug": "as-text", "name": "As text"}',
        headers=dev.headers(**{"Content-Type": "text/plain"}),
    )
    multipart = httpx.post(
        f"{dev.url}/api/projects",
        files={"slug": (None, "multi")},
        headers=dev.headers(),
    )
    for response in (form, text, multipart):
        assert response.status_code == 415, response.text
        body = response.json()
        assert body["status_code"] == 415 and body["title"] == "Unsupported Media Type"
        assert "application/json" in body["error"] and body["detail"] == body["error"]
    assert "application/x-www-form-urlencoded" in form.json()["error"]
    assert dev.count("tasks.projects") == before


@pytest.mark.parametrize(
    "content_type",
    # The old API (FastAPI) read a body without Content-Type as JSON; its clients may rely on
    # it. Media types are case-insensitive.
    [None, "application/json; charset=utf-8", "Application/JSON; charset=UTF-8"],
)
def test_json_is_read_without_a_label_or_in_any_case(
    dev: DevStack, content_type: str | None
) -> None:
    slug = f"json-{uuid.uuid4().hex[:8]}"
    response = httpx.post(
        f"{dev.url}/api/projects",
        content=b'{"slug": "%s", "name": "JSON"}' % slug.encode(),
        headers=dev.headers(**({"Content-Type": content_type} if content_type else {})),
    )
    assert response.status_code == 201, response.text


def test_malformed_json_says_where(dev: DevStack) -> None:
    response = httpx.post(
        f"{dev.url}/api/projects",
        content=b'{\n  "slug": "a",\n  "name": "A",,\n}',
        headers=dev.headers(**{"Content-Type": "application/json"}),
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert "line 3, column 15" in body["error"], body
    (item,) = body["detail"]
    assert item["loc"] == ["body", 31] and item["type"] == "json_invalid"


# --- item 7: the dashboard's chat endpoint ---------------------------------------------------


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
def test_chatkit_answers_the_references_not_configured_503(dev: DevStack, with_token: bool) -> None:
    """The dashboard calls POST /chatkit; with chat not configured the API we replace answers
    503 with this message (reference §1.9), before looking at any header."""
    headers = dev.headers() if with_token else {}
    resp = httpx.post(f"{dev.url}/chatkit", headers=headers, json={"type": "threads.list"})
    assert resp.status_code == 503, resp.text
    assert resp.json()["error"] == (
        "ChatKit server not initialized. Check CHATKIT_DATABASE_URL configuration."
    )
    assert resp.json()["status_code"] == 503
