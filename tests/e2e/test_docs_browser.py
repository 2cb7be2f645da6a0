"""The API docs in a real browser through the gateway: Debian's headless chromium opens /docs,
every public operation of the three services is listed, a token is entered under "Authorize"
and one "Try it out" call succeeds. Screenshots are kept in test-artifacts/."""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.e2e.conftest import ARTIFACTS, Stack

pytestmark = pytest.mark.e2e

WAIT_S = 30


def chromium_flags(profile: Path) -> list[str]:
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,2200",
        f"--user-data-dir={profile}",
    ]


@pytest.fixture
def browser(chromium: tuple[str, str]) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium
    profile = Path(tempfile.mkdtemp(prefix="taskflow-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in chromium_flags(profile):
        options.add_argument(flag)
    ARTIFACTS.mkdir(exist_ok=True)
    service = Service(executable_path=driver_path, log_output=str(ARTIFACTS / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()  # ends chromium and chromedriver (started by this fixture)
        import shutil

        shutil.rmtree(profile, ignore_errors=True)


def public_operations(render: ModuleType) -> set[tuple[str, str]]:
    """(METHOD, path template) of every operation the gateway exposes."""
    found = set()
    for route in render.service_routes():
        if route.internal or not route.operations:
            continue
        if render.hidden_at_gateway(re.sub(r"{[^}]+}", "7", route.path)):
            continue
        for op in route.operations:
            found.add((op.method.upper(), route.path))
    return found


def authorize(driver: object, token: str) -> None:
    """Swagger UI's Authorize dialog, as a user fills it: the bearer token, Authorize, Close."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    assert isinstance(driver, WebDriver)
    wait = WebDriverWait(driver, WAIT_S)
    driver.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize").click()
    token_input = wait.until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, ".modal-ux input[type='text']"))
    )
    token_input.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, ".modal-ux .auth-btn-wrapper .authorize").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".modal-ux .btn-done"))).click()


def test_docs_list_every_operation_and_try_it_out_works(
    stack: Stack, render: ModuleType, browser: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver: WebDriver = browser  # type: ignore[assignment]
    wait = WebDriverWait(driver, WAIT_S)
    sub = f"docs-{uuid.uuid4().hex[:8]}"
    token = stack.token(sub)
    with stack.client(token) as client:
        made = client.post("/api/projects", json={"slug": f"docs-{sub}", "name": "From the docs"})
        assert made.status_code == 201, made.text

    driver.get(f"{stack.url}/docs")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
    listed = set()
    for block in driver.find_elements(By.CSS_SELECTOR, ".opblock"):
        method = block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text.strip()
        path_el = block.find_element(By.CSS_SELECTOR, ".opblock-summary-path")
        path = path_el.get_attribute("data-path") or path_el.text
        listed.add((method.upper(), path.replace("\u200b", "").strip()))
    driver.save_screenshot(str(ARTIFACTS / "docs.png"))
    missing = public_operations(render) - listed
    assert not missing, f"not listed in /docs: {sorted(missing)}"
    assert not any(render.hidden_at_gateway(re.sub(r"{[^}]+}", "7", p)) for _, p in listed)

    authorize(driver, token)

    # Try it out: GET /api/projects, answered through the gateway with the token.
    block = next(
        b
        for b in driver.find_elements(By.CSS_SELECTOR, ".opblock.opblock-get")
        if b.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path")
        == "/api/projects"
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", block)
    block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    try_out = wait.until(lambda d: block.find_element(By.CSS_SELECTOR, ".try-out__btn"))
    driver.execute_script("arguments[0].click();", try_out)
    execute = wait.until(lambda d: block.find_element(By.CSS_SELECTOR, ".execute"))
    driver.execute_script("arguments[0].click();", execute)
    status = wait.until(
        lambda d: block.find_element(
            By.CSS_SELECTOR, ".live-responses-table .response .response-col_status"
        )
    )
    body = wait.until(
        lambda d: block.find_element(
            By.CSS_SELECTOR, ".live-responses-table .response-col_description pre"
        )
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", status)
    driver.save_screenshot(str(ARTIFACTS / "docs-try-it-out.png"))
    assert status.text.strip().startswith("200"), status.text
    assert f"docs-{sub}" in body.text


def test_try_it_out_create_a_task_with_its_example_answers_201(
    stack: Stack, browser: object
) -> None:
    """Issue #17: "Create a task", Try it out, its pre-filled example body unchanged, Execute:
    Swagger UI shows the 201 and the new task. Screenshots: docs-create-task-example.png (the
    example as offered) and docs-create-task-201.png (the answer)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver: WebDriver = browser  # type: ignore[assignment]
    wait = WebDriverWait(driver, WAIT_S)
    sub = f"docs-{uuid.uuid4().hex[:8]}"
    token = stack.token(sub)
    with stack.client(token) as client:
        made = client.post("/api/projects", json={"slug": f"try-{sub}", "name": "Try it out"})
        assert made.status_code == 201, made.text
        project_id = made.json()["id"]

    driver.get(f"{stack.url}/docs")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
    authorize(driver, token)
    block = next(
        b
        for b in driver.find_elements(By.CSS_SELECTOR, ".opblock.opblock-post")
        if b.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path")
        == "/api/projects/{project_id}/tasks"
    )
    assert "Create a task" in block.text
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", block)
    block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    try_out = wait.until(lambda d: block.find_element(By.CSS_SELECTOR, ".try-out__btn"))
    driver.execute_script("arguments[0].click();", try_out)
    body = wait.until(lambda d: block.find_element(By.CSS_SELECTOR, ".body-param textarea"))
    offered = body.get_attribute("value") or ""
    assert "Write the release notes" in offered, offered
    assert "9223372036854776000" not in offered and "assignee_id" not in offered, offered

    # Type the project id and Execute. Swagger UI re-renders the form after "Try it out"; keys
    # typed into the old input are shown but not taken ("Required field is not provided"), so
    # a refused attempt is typed again, as a user would.
    status = None
    for _attempt in range(3):
        project_input = wait.until(
            lambda d: block.find_element(
                By.CSS_SELECTOR, "tr[data-param-name='project_id'] input[type='text']"
            )
        )
        project_input.clear()
        project_input.send_keys(str(project_id), Keys.TAB)
        driver.save_screenshot(str(ARTIFACTS / "docs-create-task-example.png"))
        had_errors = bool(block.find_elements(By.CSS_SELECTOR, ".validation-errors"))
        execute = wait.until(lambda d: block.find_element(By.CSS_SELECTOR, ".execute"))
        driver.execute_script("arguments[0].click();", execute)

        def settled(d: object, had_errors: bool = had_errors) -> list | bool:
            found = block.find_elements(
                By.CSS_SELECTOR, ".live-responses-table .response .response-col_status"
            )
            errors = block.find_elements(By.CSS_SELECTOR, ".validation-errors")
            return found or (errors if errors and not had_errors else False)

        try:
            outcome = WebDriverWait(driver, 5 if had_errors else WAIT_S).until(settled)
        except TimeoutException:
            continue
        if "response-col_status" in (outcome[0].get_attribute("class") or ""):
            status = outcome[0]
            break
    driver.save_screenshot(str(ARTIFACTS / "docs-create-task-201.png"))
    assert status is not None, "Swagger UI never sent the request"
    answer = wait.until(
        lambda d: block.find_element(
            By.CSS_SELECTOR, ".live-responses-table .response-col_description pre"
        )
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", status)
    driver.save_screenshot(str(ARTIFACTS / "docs-create-task-201.png"))
    assert status.text.strip().startswith("201"), (status.text, answer.text)
    assert "Write the release notes" in answer.text
    assert f'"project_id": {project_id}' in answer.text
