"""§8.3 Sentry egress (issue #11 item 3): host patterns before every call, the egress guard,
a 1 MiB cap while streaming, one overall deadline, no redirects — against raw loopback
servers that count connections and bytes, so a refusal is proved by what never happened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from adapters.outbound.egress import Resolver
from adapters.outbound.sentry import MAX_ANSWER_BYTES, HttpSentryApi, sentry_http_client
from core.model.bindings import Binding
from core.model.errors import SentryRejected, SentryUnavailable
from core.model.host_patterns import HostPattern, parse_host_patterns

LOOPBACK = parse_host_patterns("http://127.0.0.1:*")
TOKEN = "sntrys_egress-test-token-0123456789"
ORG = "acme"
TIMEOUT = 1.0

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """An HTTP/1.1 server on 127.0.0.1 that counts connections and bytes it sent."""

    def __init__(self, answer: Handler) -> None:
        self.answer = answer
        self.connections = 0
        self.bytes_sent = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            await self.answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        self.bytes_sent += len(data)


def binding(url: str) -> Binding:
    return Binding(tenant_id=1, org=ORG, sentry_url=url, sentry_token=TOKEN)


@pytest.fixture
async def make_api() -> AsyncIterator[Callable[..., HttpSentryApi]]:
    clients = []

    def build(
        patterns: tuple[HostPattern, ...] = LOOPBACK, resolver: Resolver | None = None
    ) -> HttpSentryApi:
        client = sentry_http_client(patterns, resolver=resolver)
        clients.append(client)
        return HttpSentryApi(client, TIMEOUT, patterns)

    yield build
    for client in clients:
        await client.aclose()


def json_answer(server: RawServer, body: bytes = b'{"status": "resolved"}') -> Handler:
    async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
        await server.send(writer, head.encode() + b"\r\n\r\n" + body)

    return answer


async def test_the_raw_server_is_reached_when_the_patterns_allow_it(
    make_api: Callable[..., HttpSentryApi],
) -> None:
    server = RawServer(lambda r, w: asyncio.sleep(0))
    server.answer = json_answer(server)
    async with server:
        assert await make_api().get_issue_status(binding(server.url), "1") == "resolved"
    assert server.connections == 1


@pytest.mark.parametrize("patterns", ["", "https://*.sentry.io", "http://127.0.0.2:*"])
async def test_issue11_8_3_a_binding_the_patterns_no_longer_allow_is_refused_unconnected(
    make_api: Callable[..., HttpSentryApi], patterns: str
) -> None:
    server = RawServer(lambda r, w: asyncio.sleep(0))
    server.answer = json_answer(server)
    api = make_api(parse_host_patterns(patterns) if patterns else ())
    async with server:
        with pytest.raises(SentryRejected) as refused:
            await api.update_issue(binding(server.url), "1", {"status": "resolved"})
    assert not refused.value.transient  # W9: a dead letter, not retried
    assert "SENTRY_JIRA_SENTRY_HOSTS" in refused.value.detail
    assert TOKEN not in refused.value.detail
    assert server.connections == 0


async def test_issue11_8_3_a_name_resolving_to_loopback_is_refused_before_connecting(
    make_api: Callable[..., HttpSentryApi],
) -> None:
    seen: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        seen.append(host)
        return ["127.0.0.1"]

    server = RawServer(lambda r, w: asyncio.sleep(0))
    server.answer = json_answer(server)
    async with server:
        wildcard = make_api(parse_host_patterns("http://*.example:*"), resolve)
        with pytest.raises(SentryRejected) as refused:
            await wildcard.get_issue_status(binding(f"http://sentry.example:{server.port}"), "1")
        assert "not allowed" in refused.value.detail and server.connections == 0
        # One rule: a wildcard-free pattern naming the host lets it resolve to loopback.
        exact = make_api(parse_host_patterns("http://sentry.example:*"), resolve)
        status = await exact.get_issue_status(binding(f"http://sentry.example:{server.port}"), "1")
    assert status == "resolved" and server.connections == 1 and seen == ["sentry.example"] * 2


@pytest.mark.parametrize("declared", [True, False])
async def test_issue11_8_3_an_answer_over_1_mib_is_refused_while_streaming(
    make_api: Callable[..., HttpSentryApi], declared: bool
) -> None:
    endless = 200 * MAX_ANSWER_BYTES  # the old adapter read every byte of an answer

    async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # declared: a Content-Length over the cap; else no length, the body ends at close
        length = f"Content-Length: {endless}" if declared else "Connection: close"
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}\r\n\r\n"
        await server.send(writer, head.encode())
        chunk = b" " * 65536
        while server.bytes_sent < endless:
            await server.send(writer, chunk)

    server = RawServer(answer)
    async with server:
        started = time.monotonic()
        with pytest.raises(SentryRejected) as refused:
            await make_api().get_issue_status(binding(server.url), "1")
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.1)
    assert "too large" in refused.value.detail
    assert elapsed < 10  # generous: the cap stops it in milliseconds
    # Reading stopped at the cap: the server could not push more than socket buffers hold.
    assert server.bytes_sent < 40 * MAX_ANSWER_BYTES


async def test_issue11_8_3_one_deadline_for_the_whole_call_not_per_read(
    make_api: Callable[..., HttpSentryApi],
) -> None:
    body = b'{"status": "resolved"}' + b" " * 40

    async def trickle(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
        await server.send(writer, head.encode() + b"\r\n\r\n")
        for byte in body:  # one byte every 0.25 s: each read is fast, the whole is 15 s
            await server.send(writer, bytes([byte]))
            await asyncio.sleep(0.25)

    server = RawServer(trickle)
    async with server:
        started = time.monotonic()
        with pytest.raises(SentryUnavailable) as late:
            await make_api().get_issue_status(binding(server.url), "1")
        elapsed = time.monotonic() - started
    assert "in time" in late.value.detail and late.value.transient
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT * 5  # ends at the deadline, far before 15 s


async def test_issue11_8_3_a_redirect_is_answered_not_followed(
    make_api: Callable[..., HttpSentryApi],
) -> None:
    async def redirect(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        location = f"{server.url}/elsewhere"
        head = f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0"
        await server.send(writer, head.encode() + b"\r\n\r\n")

    server = RawServer(redirect)
    async with server:
        with pytest.raises(SentryRejected) as refused:
            await make_api().update_issue(binding(server.url), "1", {"status": "resolved"})
    assert refused.value.status == 307 and server.connections == 1
