"""The services' HTTP client survives a kept-alive connection the other side has just closed.

Found by the fuzzer against `taskflow serve all`: an audit read answered 503 "Tasks service
unavailable" because the audit service's GET to the tasks service went out on a pooled
connection that uvicorn was closing at that moment (its keep-alive timeout, 5 s, is also httpx'
default pool expiry), and failed with ReadError. The peer here is a real TCP server that does
exactly that: it answers the first request of a connection and closes the connection when the
next request on it arrives, without answering."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import pytest
from taskflow_core.http import create_http_client

T = TypeVar("T")
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n"
    b'connection: keep-alive\r\n\r\n{"ok":true}'
)


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def _closing_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await _read_request(reader)
        writer.write(RESPONSE)
        await writer.drain()
        await _read_request(reader)  # the next request on this connection: dropped
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.transport.abort()  # a reset, as a closing server's socket answers late data


async def _with_peer(scenario: Callable[[str], Awaitable[T]]) -> T:
    """Run ``scenario(base_url)`` against the closing peer, in one event loop."""
    server = await asyncio.start_server(_closing_peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        return await scenario(f"http://127.0.0.1:{port}")


def test_a_get_on_a_connection_closed_under_it_is_retried_once() -> None:
    async def run(peer: str) -> list[int]:
        async with create_http_client(base_url=peer, timeout=3.0) as client:
            return [(await client.get("/access")).status_code for _ in range(4)]

    assert asyncio.run(_with_peer(run)) == [200, 200, 200, 200]


def test_a_post_is_not_retried() -> None:
    """A POST may have been acted on: the caller decides (the relay retries from its outbox)."""

    async def run(peer: str) -> None:
        async with create_http_client(base_url=peer, timeout=3.0) as client:
            assert (await client.post("/events", json={})).status_code == 200
            with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
                await client.post("/events", json={})

    asyncio.run(_with_peer(run))
