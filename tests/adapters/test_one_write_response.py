"""A response's head and body leave in one socket write (adapters/http/parser.py, item 4).

SPEC §7: two writes per small JSON answer were the ack path's costliest item (two loopback
segments). Real uvicorn with the project's protocol on a loopback port, real sockets; the
protocol's transport is wrapped to record every write, so the count is exact, not inferred
from how the client's reads happen to split.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from adapters.http.app import create_app
from adapters.http.parser import JsonErrorHttpToolsProtocol
from tests.support.builders import a_fake_container
from tests.support.process import uvicorn_in_thread

WRITES: list[bytes | str] = []  # every write and close of every connection, in order


class RecordingTransport:
    """The real transport, with each write (and close) noted before it happens."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        WRITES.append(bytes(data))
        self._transport.write(data)

    def close(self) -> None:
        WRITES.append("close")
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class RecordingProtocol(JsonErrorHttpToolsProtocol):
    def connection_made(self, transport: Any) -> None:
        super().connection_made(RecordingTransport(transport))


async def small_app(scope: Any, receive: Any, send: Any) -> None:
    """Raw ASGI answers of each shape uvicorn writes: fixed length, streamed, bodiless."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        for piece in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/no-body":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/bad-header":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-bad", b"a\r\nb")]})
    elif path == "/start-then-fail":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"5")]})
        raise RuntimeError("the app failed after starting its answer")
    else:
        body = b'{"status":"accepted"}'
        await send({"type": "http.response.start", "status": 202,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def serve(app: Any) -> Iterator[str]:
    with uvicorn_in_thread(app, http=RecordingProtocol) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def small() -> Iterator[str]:
    yield from serve(small_app)


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    yield from serve(create_app(a_fake_container()))


@pytest.fixture(autouse=True)
def clear() -> None:
    WRITES.clear()


def written() -> list[bytes]:
    """The bytes writes so far (a connection's close, when the client hangs up, may land
    anywhere among them)."""
    return [w for w in WRITES if isinstance(w, bytes)]


def raw_exchange(url: str, request: bytes) -> bytes:
    """Send one raw request, read until the server closes (the requests ask it to)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_json_answer_is_one_write_of_head_and_body_sec7(small: str) -> None:
    with httpx.Client() as client:
        response = client.post(small + "/ack", content=b"{}")
        assert (response.status_code, response.json()) == (202, {"status": "accepted"})
        client.post(small + "/ack", content=b"{}")  # the same connection, kept alive
    assert len(written()) == 2
    for write in written():
        assert write.startswith(b"HTTP/1.1 202 Accepted\r\n")
        assert write.endswith(b'\r\n\r\n{"status":"accepted"}')


def test_the_service_answers_in_one_write_each_sec7(app_url: str) -> None:
    """The real app: a 200 with a body, a 401 and a 404 from Litestar's own error path."""
    with httpx.Client() as client:
        assert client.get(app_url + "/health").status_code == 200
        assert client.post(app_url + "/extensions/jira/issue-updated/", content=b"{}",
                           headers={"content-type": "application/json"}).status_code == 401
        assert client.get(app_url + "/nowhere").status_code == 404
    assert len(written()) == 3
    assert all(w.startswith(b"HTTP/1.1 ") and b"\r\n\r\n{" in w for w in written())


def test_a_streamed_answer_starts_with_head_and_first_piece(small: str) -> None:
    response = httpx.get(small + "/stream")
    assert response.text == "one,two,three"
    writes = written()
    assert len(writes) == 4  # head + "one,", "two,", "three", the last chunk
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"\r\n\r\n4\r\none,\r\n")
    assert writes[-1] == b"0\r\n\r\n"


def test_a_head_request_still_gets_its_head(small: str) -> None:
    """A HEAD answer writes no body: the held head is written alone."""
    response = httpx.head(small + "/ack")
    assert response.status_code == 202
    assert response.headers["content-length"] == "21"
    assert len(written()) == 1
    assert written()[0].endswith(b"\r\n\r\n")


def test_a_bodiless_answer_is_one_write(small: str) -> None:
    assert httpx.get(small + "/no-body").status_code == 204
    assert len(written()) == 1


def test_connection_close_writes_the_answer_then_closes(small: str) -> None:
    answer = raw_exchange(small, b"GET /ack HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 202 Accepted\r\n")
    assert answer.endswith(b'{"status":"accepted"}')
    assert len(written()) == 1
    assert written()[0].endswith(b'{"status":"accepted"}')
    assert "close" in WRITES[WRITES.index(written()[0]) + 1:]  # the answer, then the close


def test_a_refused_header_value_is_never_written(small: str) -> None:
    """uvicorn's own header checks still run on the held head: a CR/LF in a value (header
    injection) fails the answer, the connection closes, and none of the head is written."""
    answer = raw_exchange(small, b"GET /bad-header HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer == b""
    assert all(b"x-bad" not in w for w in written())


def test_an_app_failing_after_its_head_closes_without_a_partial_answer(small: str) -> None:
    answer = raw_exchange(small, b"GET /start-then-fail HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer == b""  # nothing promised was half-sent: the connection just closes
    assert written() == []
    assert "close" in WRITES
