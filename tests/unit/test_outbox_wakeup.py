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
        relay = wakeup.subscribe()
        wakeup.wake()  # while the relay delivers
        kept = await relay.wait(0.01)
        relay.clear()  # the next round starts
        quiet = await relay.wait(0.01)
        off = OutboxWakeup(enabled=False)
        signal = off.subscribe()
        off.wake()
        return kept, quiet, await signal.wait(0.01)

    assert asyncio.run(scenario()) == (True, False, False)


def test_one_wake_reaches_every_reader_whatever_the_others_did() -> None:
    """The relay, the notify publisher and the webhook worker each keep the wake-up until they
    look: one reader clearing its signal (starting its round) does not swallow another's."""

    async def scenario() -> list[bool]:
        wakeup = OutboxWakeup()
        relay, notify, webhooks = (wakeup.subscribe() for _ in range(3))
        wakeup.wake()
        relay.clear()
        return [await relay.wait(0.01), await notify.wait(0.01), await webhooks.wait(0.01)]

    assert asyncio.run(scenario()) == [False, True, True]


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
    relay = wakeup.subscribe()
    app = falcon.asgi.App(middleware=[WakeOnWrite(wakeup)])
    app.add_route("/r", Resource())
    query = f"status={status}" if status else None
    falcon.testing.TestClient(app).simulate_request(method, "/r", query_string=query)
    assert asyncio.run(relay.wait(0)) is wakes
