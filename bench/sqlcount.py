"""SQL statements and round trips per request, counted on the wire.

A small TCP proxy between a service and PostgreSQL reads the frontend protocol messages
(``Q`` simple query, ``E`` execute, ``S`` sync) of every connection, so the count covers
everything the service sends (connection checks, BEGIN/COMMIT, prepared statements) with no
server setting changed. The services are restarted behind the proxies for this pass only
(``--sql-count``); the timed runs never go through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from bench.procs import free_port
from bench.report import Row
from bench.scenarios import CONTROL, Scenario
from bench.seed import SeedData
from bench.stack import Stack

PROBE_REQUESTS = 40
IDLE_WINDOW_S = 3.0


@dataclass
class Counts:
    statements: int = 0
    round_trips: int = 0

    def snapshot(self) -> tuple[int, int]:
        return self.statements, self.round_trips


@dataclass
class CountingProxy:
    """Forwards 127.0.0.1:<port> to the PostgreSQL server, counting frontend messages (and,
    while ``trace`` is a list, recording them: kind and SQL text or statement name)."""

    target_host: str
    target_port: int
    port: int = field(default_factory=free_port)
    counts: Counts = field(default_factory=Counts)
    trace: list[str] | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.base_events.Server | None = None

    def start(self) -> CountingProxy:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", self.port)
            )
            ready.set()
            loop.run_forever()
            self._server.close()
            loop.run_until_complete(self._server.wait_closed())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"sql-proxy-{self.port}", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            self._frontend(client_r, server_w),
            self._pipe(server_r, client_w),
            return_exceptions=True,
        )
        for writer in (client_w, server_w):
            with contextlib.suppress(Exception):
                writer.close()

    async def _frontend(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Client → server: the startup packet has no type byte, every later message has one."""
        try:
            header = await reader.readexactly(8)
            length, _code = struct.unpack("!ii", header)
            writer.write(header + await reader.readexactly(length - 8))
            while True:
                kind = await reader.readexactly(1)
                raw_len = await reader.readexactly(4)
                (length,) = struct.unpack("!i", raw_len)
                body = await reader.readexactly(length - 4)
                if kind == b"Q":
                    self.counts.statements += 1
                    self.counts.round_trips += 1
                elif kind == b"E":
                    self.counts.statements += 1
                elif kind == b"S":
                    self.counts.round_trips += 1
                if self.trace is not None and kind in b"QPBES":
                    self.trace.append(_describe(kind, body))
                writer.write(kind + raw_len + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()


def _describe(kind: bytes, body: bytes) -> str:
    """One frontend message as a trace line: Query/Parse show their SQL, Bind its statement."""
    parts = body.split(b"\0")
    if kind == b"Q":
        return "Query   " + " ".join(parts[0].decode(errors="replace").split())[:160]
    if kind == b"P":
        name = parts[0].decode(errors="replace") or "<unnamed>"
        sql = " ".join(parts[1].decode(errors="replace").split())[:160]
        return f"Parse   {name}: {sql}"
    if kind == b"B":
        return f"Bind    {parts[1].decode(errors='replace') or '<unnamed>'}"
    return {b"E": "Execute", b"S": "Sync"}[kind]


def proxied_url(database_url: str, proxy: CountingProxy) -> str:
    """``database_url`` through ``proxy``, without TLS (the proxy must read the messages)."""
    parts = urlsplit(database_url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    netloc_new = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
    params = dict(parse_qsl(parts.query))
    params.update({"sslmode": "disable", "gssencmode": "disable"})
    return urlunsplit((parts.scheme, netloc_new, parts.path, urlencode(params), parts.fragment))


def _probe_requests(scenario: Scenario, count: int) -> list[tuple[str, str, str | None]]:
    request = scenario.request
    ids = request.ids or (0,)
    out: list[tuple[str, str, str | None]] = []
    for n in range(count):
        task_id = ids[n % len(ids)]
        path = request.path.replace("{id}", str(task_id))
        body = request.body
        if body is not None:
            body = body.replace("{n}", str(n)).replace("{pct}", str(n % 101))
            body = body.replace("{alt:blocked|in_progress}", "blocked")
        out.append((request.method, path, body))
    return out


def count_sql_per_request(
    stack: Stack,
    scenarios: list[Scenario],
    rows: list[Row],
    token: str,
    data: SeedData,
    log_dir: Path,
    log: Callable[[str], None],
) -> None:
    """Restart the services behind counting proxies, send each scenario's requests one at a
    time, and store statements and round trips per request on the scenario's direct row."""
    parts = urlsplit(stack.database_url)
    proxies: dict[str, CountingProxy] = {}
    try:
        for name in ("tasks", "audit", "auth-verifier"):
            service = stack.services.get(name)
            if service is None or service.managed is None or not service.managed.alive():
                continue
            proxy = CountingProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
            proxies[name] = proxy
            service.managed.stop()
            stack.registry.started.remove(service.managed)
            service.managed = None
        log(f"sql-count: restarting {', '.join(proxies)} behind counting proxies")
        original = stack.database_url
        for name, proxy in proxies.items():
            stack.database_url = proxied_url(original, proxy)
            try:
                stack.start_services((name,))
            finally:
                stack.database_url = original
        direct = {r.scenario: r for r in rows if r.via == "direct" and not r.skipped}
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with httpx.Client(headers=headers, timeout=10) as client:
            for scenario in scenarios:
                row = direct.get(scenario.name)
                counting = proxies.get(scenario.service)
                if row is None or counting is None or scenario.service == CONTROL:
                    continue
                if scenario.reset_status:
                    asyncio.run(_reset(stack, token, data))
                base = stack.services[scenario.service].url
                probes = _probe_requests(scenario, PROBE_REQUESTS)
                client.request(probes[0][0], base + probes[0][1], content=probes[0][2])
                idle = _idle_rate(counting)
                before = counting.counts.snapshot()
                started = time.monotonic()
                for method, path, body in probes:
                    client.request(method, base + path, content=body)
                elapsed = time.monotonic() - started
                after = counting.counts.snapshot()
                statements = after[0] - before[0] - idle[0] * elapsed
                trips = after[1] - before[1] - idle[1] * elapsed
                trace_one(client, base, probes[-1], counting, log_dir, scenario.name)
                row.sql_statements_per_req = round(max(statements, 0) / len(probes), 2)
                row.sql_round_trips_per_req = round(max(trips, 0) / len(probes), 2)
                log(
                    f"sql-count {scenario.name}: {row.sql_statements_per_req} statements, "
                    f"{row.sql_round_trips_per_req} round trips per request"
                )
    finally:
        for service in stack.services.values():
            if service.managed is not None and service.name in proxies:
                service.managed.stop()
        for proxy in proxies.values():
            proxy.stop()


def trace_one(
    client: httpx.Client,
    base: str,
    probe: tuple[str, str, str | None],
    proxy: CountingProxy,
    log_dir: Path,
    name: str,
) -> None:
    """The protocol messages of one request, for the report (a relay poll may interleave)."""
    method, path, body = probe
    if method == "PATCH" and body is not None:
        body = body.replace('"blocked"', '"in_progress"')  # the probes left it blocked
    proxy.trace = []
    resp = client.request(method, base + path, content=body)
    time.sleep(0.2)
    lines, proxy.trace = proxy.trace, None
    (log_dir.parent / f"sql-trace-{name}.txt").write_text(
        f"{method} {path} -> {resp.status_code}\n" + "\n".join(lines) + "\n"
    )


def _idle_rate(proxy: CountingProxy) -> tuple[float, float]:
    """Statements per second with no request in flight (the outbox relay's polling)."""
    before = proxy.counts.snapshot()
    time.sleep(IDLE_WINDOW_S)
    after = proxy.counts.snapshot()
    return (after[0] - before[0]) / IDLE_WINDOW_S, (after[1] - before[1]) / IDLE_WINDOW_S


async def _reset(stack: Stack, token: str, data: SeedData) -> Any:
    from bench.seed import ApiSeeder

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=stack.services["tasks"].url, headers=headers, timeout=30
    ) as client:
        await ApiSeeder(client).reset_status_tasks(data.status_task_ids)
