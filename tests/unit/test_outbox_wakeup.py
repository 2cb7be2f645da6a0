"""The relay's wake-up: which writes wake it, and when it LISTENs (issue 17, item 6)."""

from __future__ import annotations

import asyncio

import falcon
import falcon.asgi
import falcon.testing
import pytest
from taskflow_core.config import ConfigError, Settings
from taskflow_tasks.outbox.wakeup import OutboxWakeup, WakeOnWrite, listen_enabled

DIRECT = "postgresql://u@db.example.test/app"
POOLED = "postgresql://u@ep-cool-123-pooler.eu.aws.neon.tech/app"


@pytest.mark.parametrize(
    ("env", "url", "expected"),
    [
        ({}, DIRECT, True),
        ({}, POOLED, False),  # PgBouncer in transaction mode: a LISTEN would be lost
        ({"OUTBOX_LISTEN": "on"}, POOLED, True),
        ({"OUTBOX_LISTEN": "off"}, DIRECT, False),
        ({"OUTBOX_LISTEN": "AUTO"}, DIRECT, True),
        ({"OUTBOX_WAKEUP": "off"}, DIRECT, False),
    ],
)
def test_when_the_relay_listens(env: dict[str, str], url: str, expected: bool) -> None:
    assert listen_enabled(Settings.from_env({"DATABASE_URL": url, **env})) is expected


def test_an_unknown_listen_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="OUTBOX_LISTEN"):
        Settings.from_env({"OUTBOX_LISTEN": "sometimes"})


def test_a_wake_is_kept_until_the_relay_waits() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        wakeup = OutboxWakeup()
        wakeup.wake()  # while the relay delivers
        kept = await wakeup.wait(0.01)
        wakeup.clear()  # the next round starts
        quiet = await wakeup.wait(0.01)
        off = OutboxWakeup(enabled=False)
        off.wake()
        return kept, quiet, await off.wait(0.01)

    assert asyncio.run(scenario()) == (True, False, False)


class Resource:
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.status = int(req.get_param("status") or 201)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = {}

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        raise falcon.HTTPNotFound()


@pytest.mark.parametrize(
    ("method", "status", "wakes"),
    [
        ("POST", 201, True),
        ("POST", 200, True),
        ("POST", 422, False),  # refused: nothing was written
        ("POST", 409, False),
        ("GET", 200, False),  # a read writes nothing
        ("DELETE", None, False),  # an error raised by the resource
    ],
)
def test_which_answers_wake_the_relay(method: str, status: int | None, wakes: bool) -> None:
    wakeup = OutboxWakeup()
    app = falcon.asgi.App(middleware=[WakeOnWrite(wakeup)])
    app.add_route("/r", Resource())
    query = f"status={status}" if status else None
    falcon.testing.TestClient(app).simulate_request(method, "/r", query_string=query)
    assert wakeup._event.is_set() is wakes
