"""Through the gateway, as a client sees it: GET /, /openapi.json, /docs and /redoc say
"TaskFlow API", and both docs pages open with the introduction in a real browser (Debian's
headless chromium). Screenshots are kept in test-artifacts/."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import ARTIFACTS, Stack
from tests.e2e.test_docs_browser import WAIT_S, browser  # noqa: F401  (the browser fixture)

pytestmark = pytest.mark.e2e

# Headings of the introduction, and a phrase from the first section.
SHOWN = (
    "Getting a token",
    "Errors",
    "ETag and If-Match",
    "Idempotency-Key",
    "Audit follows writes",
)
FIRST_STEP = "taskflow token --sub alice"


def test_gateway_root_and_document_are_the_taskflow_api(stack: Stack) -> None:
    root = httpx.get(f"{stack.url}/").json()
    assert root["name"] == "TaskFlow API" and root["docs"] == "/docs"
    assert root["chatkit"] == "/chatkit (not configured)"
    info = httpx.get(f"{stack.url}/openapi.json").json()["info"]
    assert info["title"] == "TaskFlow API"
    assert all(f"## {heading}" in info["description"] for heading in SHOWN)


@pytest.mark.parametrize(
    ("page", "loaded"),
    [("/docs", ".information-container .info"), ("/redoc", ".api-info, [class*='api-info']")],
)
def test_docs_pages_open_with_the_introduction(
    stack: Stack,
    browser: object,  # noqa: F811
    page: str,
    loaded: str,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    driver: WebDriver = browser  # type: ignore[assignment]
    driver.get(f"{stack.url}{page}")
    wait = WebDriverWait(driver, WAIT_S)
    wait.until(lambda d: FIRST_STEP in d.find_element(By.TAG_NAME, "body").text)
    text = driver.find_element(By.TAG_NAME, "body").text
    driver.save_screenshot(str(ARTIFACTS / f"{page.strip('/')}-introduction.png"))
    assert driver.title == "TaskFlow API"
    assert driver.find_elements(By.CSS_SELECTOR, loaded), page
    for heading in SHOWN:
        assert heading in text, (page, heading)
    # The introduction comes first, before the operations.
    assert text.index(FIRST_STEP) < text.index("/api/projects"), page
