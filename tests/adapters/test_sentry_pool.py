"""Sentry connections under a burst (issue #15; W8, §8.3): calls to one Sentry host are bounded
(`PER_HOST_CALLS` in flight, the rest wait their turn) and ride warm keep-alive connections.

A loopback server that holds every PUT for a moment and counts what it sees: requests in
flight at once, and connections opened."""

from __future__ import annotations

import asyncio
from typing import Any

from adapters.outbound.sentry import PER_HOST_CALLS, HttpSentryApi, sentry_http_client
from core.model.bindings import Binding
from core.model.errors import SentryUnavailable
from core.model.host_patterns import parse_host_patterns

TOKEN = "sntrys_pool-test-token-0123456789"
BURST = 3 * PER_HOST_CALLS
HOLD_SECONDS = 0.05


class CountingSentry:
    """Answers every request with 200 `{}` after HOLD_SECONDS (HTTP/1.1 keep-alive)."""

    def __init__(self) -> None:
        self.in_flight = self.most_in_flight = self.connections = self.requests = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                self.requests += 1
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                await asyncio.sleep(HOLD_SECONDS)
                self.in_flight -= 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


async def _burst(api: HttpSentryApi, binding: Binding) -> list[Any]:
    return await asyncio.gather(
        *(api.update_issue(binding, str(n), {"status": "resolved"}) for n in range(BURST)),
        return_exceptions=True)


async def test_W8_a_burst_to_one_sentry_host_is_bounded_and_reuses_warm_connections() -> None:
    sentry = CountingSentry()
    url = await sentry.start()
    patterns = parse_host_patterns("http://127.0.0.1:*")
    binding = Binding(tenant_id=1, org="acme", sentry_url=url, sentry_token=TOKEN)
    try:
        async with sentry_http_client(patterns) as client:
            api = HttpSentryApi(client, timeout=10.0, sentry_hosts=patterns)
            first = await _burst(api, binding)
            opened = sentry.connections
            second = await _burst(api, binding)
    finally:
        await sentry.stop()
    assert first == second == [None] * BURST  # every write answered
    assert sentry.requests == 2 * BURST
    assert sentry.most_in_flight == PER_HOST_CALLS  # bounded, and the bound is used
    assert opened == PER_HOST_CALLS
    assert sentry.connections == opened  # the second burst opened none: warm pool


async def test_W9_a_call_waiting_for_its_turn_past_the_deadline_is_a_transient_failure() -> None:
    sentry = CountingSentry()
    url = await sentry.start()
    patterns = parse_host_patterns("http://127.0.0.1:*")
    binding = Binding(tenant_id=1, org="acme", sentry_url=url, sentry_token=TOKEN)
    try:
        async with sentry_http_client(patterns) as client:
            # The deadline is shorter than a turn: PER_HOST_CALLS calls get one, others
            # wait for longer than the deadline (W9: retried later, never a hang).
            api = HttpSentryApi(client, timeout=HOLD_SECONDS / 2, sentry_hosts=patterns,
                                per_host_calls=1)
            results = await asyncio.gather(
                *(api.update_issue(binding, str(n), {"status": "resolved"}) for n in range(3)),
                return_exceptions=True)
    finally:
        await sentry.stop()
    assert all(isinstance(r, SentryUnavailable) for r in results), results
    assert sentry.most_in_flight == 1
