"""/metrics of a service: requests by route template and status, latency, gauge hooks."""

from __future__ import annotations

import falcon
import falcon.asgi
import falcon.testing
import pytest
from taskflow_core.config import Settings
from taskflow_core.routing import Operation, Route
from taskflow_core.service import Lifecycle, ServiceApp, build_app


class ThingResource:
    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, thing_id: int
    ) -> None:
        if thing_id == 0:
            raise falcon.HTTPNotFound()
        resp.media = {"id": thing_id}


def make_app() -> ServiceApp:
    route = Route(
        "/things/{thing_id:int}",
        ThingResource(),
        (Operation("GET", "Get a thing", "things", public=True),),
    )
    return build_app(
        service="demo",
        title="Demo",
        settings=Settings(),
        routes=[route],
        lifecycle=Lifecycle(None),
    )


def sample_value(text: str, name: str, **labels: str) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


@pytest.fixture
def client() -> falcon.testing.TestClient:
    return falcon.testing.TestClient(make_app())


def test_requests_are_counted_by_route_template_and_status(
    client: falcon.testing.TestClient,
) -> None:
    for thing in (1, 2, 3, 0):
        client.simulate_get(f"/things/{thing}")
    client.simulate_get("/no/such/thing")
    text = client.simulate_get("/metrics").text
    template = "/things/{thing_id:int}"
    ok = sample_value(
        text, "taskflow_http_requests_total", route=template, status="200", service="demo"
    )
    assert ok == 3
    assert sample_value(text, "taskflow_http_requests_total", route=template, status="404") == 1
    assert sample_value(text, "taskflow_http_requests_total", route="unmatched") == 1
    count = sample_value(text, "taskflow_http_request_duration_seconds_count", route=template)
    assert count == 4
    assert "/things/1" not in text  # raw paths never become series


def test_metrics_need_no_token(
    client: falcon.testing.TestClient,
) -> None:
    response = client.simulate_get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")


def test_gauge_hooks_are_read_at_scrape_time() -> None:
    app = make_app()
    backlog = [7]

    async def outbox_backlog() -> int:
        return backlog[0]

    app.metrics.track_outbox_backlog(outbox_backlog)
    app.metrics.track_jwks_cache_age(lambda: 12.5)
    client = falcon.testing.TestClient(app)
    text = client.simulate_get("/metrics").text
    assert sample_value(text, "taskflow_outbox_backlog", service="demo") == 7
    assert sample_value(text, "taskflow_jwks_cache_age_seconds", service="demo") == 12.5
    backlog[0] = 0
    text = client.simulate_get("/metrics").text
    assert sample_value(text, "taskflow_outbox_backlog", service="demo") == 0


def test_a_failing_gauge_source_does_not_fail_the_scrape() -> None:
    app = make_app()

    def broken() -> float:
        raise RuntimeError("source down")

    app.metrics.track_jwks_cache_age(broken)
    response = falcon.testing.TestClient(app).simulate_get("/metrics")
    assert response.status_code == 200
    assert "taskflow_http_requests_total" in response.text


def test_outbox_backlog_comes_from_the_readiness_fact() -> None:
    async def outbox_check() -> dict[str, object]:
        return {"outbox": {"backlog": 4, "oldest_age_s": 1.5}}

    app = build_app(
        service="demo",
        title="Demo",
        settings=Settings(),
        routes=[],
        lifecycle=Lifecycle(None),
        readiness=[outbox_check],
    )
    text = falcon.testing.TestClient(app).simulate_get("/metrics").text
    assert sample_value(text, "taskflow_outbox_backlog", service="demo") == 4
    # A service without an outbox reports no backlog sample at all.
    plain = falcon.testing.TestClient(make_app()).simulate_get("/metrics").text
    assert sample_value(plain, "taskflow_outbox_backlog") is None
