"""Slow and silent clients are cut off: a request must arrive whole within the read deadline."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from adapters.http.app import create_app
from adapters.http.parser import JsonErrorHttpToolsProtocol
from tests.support.builders import a_fake_container
from tests.support.process import uvicorn_in_thread

pytestmark = pytest.mark.e2e


class ShortDeadline(JsonErrorHttpToolsProtocol):
    read_timeout_seconds = 0.5


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    with uvicorn_in_thread(create_app(a_fake_container()), http=ShortDeadline) as port:
        yield port


def trickle(sock: socket.socket, piece: bytes, times: int) -> None:
    """Send `piece` every 0.1 s, `times` times, or until the server has closed."""
    for _ in range(times):
        try:
            sock.sendall(piece)
        except OSError:
            return
        time.sleep(0.1)


def closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_a_silent_connection_is_closed_after_the_deadline(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        assert closed_within(sock, 3)


def test_headers_trickled_past_the_deadline_are_cut_off(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        trickle(sock, b"X-Slow: 1\r\n", 8)  # 0.8 s of trickling, past the 0.5 s deadline
        assert closed_within(sock, 3)


def test_a_prompt_request_on_a_kept_alive_connection_is_served(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        for _ in range(2):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(3)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            time.sleep(0.3)  # idle between requests, within uvicorn's keep-alive


def test_a_request_gets_its_whole_deadline_from_its_own_first_byte(server: int) -> None:
    """One timer per connection: a request that begins shortly before the timer armed for
    the connection fires is still given its full deadline (0.5 s here), counted from its
    own first byte."""
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(3)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        time.sleep(0.35)  # the connection's timer is due 0.5 s after it opened
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        time.sleep(0.3)  # past the connection's first 0.5 s, within this request's own
        sock.sendall(b"Host: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")


def test_a_later_request_trickled_on_a_kept_alive_connection_is_cut_off(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(3)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        time.sleep(0.7)  # the connection's timer lapsed between requests
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        trickle(sock, b"X-Slow: 1\r\n", 12)  # 1.2 s of trickling, past the 0.5 s deadline
        assert closed_within(sock, 3)
        assert time.monotonic() - started < 3


@pytest.fixture(scope="module")
def short_keep_alive() -> Iterator[int]:
    with uvicorn_in_thread(create_app(a_fake_container()), http=ShortDeadline,
                           timeout_keep_alive=1) as port:
        yield port


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout(
    short_keep_alive: int,
) -> None:
    """The connection's one timer also keeps uvicorn's keep-alive timeout (1 s here): an idle
    connection is closed after it, not before, and each response starts it afresh."""
    with socket.create_connection(("127.0.0.1", short_keep_alive)) as sock:
        sock.settimeout(3)
        for _ in range(3):  # requests 0.6 s apart: each within the timeout of the one before
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            time.sleep(0.6)
        idle_from = time.monotonic() - 0.6
        assert closed_within(sock, 3)
        idle = time.monotonic() - idle_from
    assert 0.9 <= idle < 2.5, idle


def test_blank_lines_after_a_response_do_not_hold_a_connection_open(
    short_keep_alive: int,
) -> None:
    """Bytes after a response begin the next request's read deadline, even the blank lines
    the parser skips without starting a request."""
    with socket.create_connection(("127.0.0.1", short_keep_alive)) as sock:
        sock.settimeout(3)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        trickle(sock, b"\r\n", 20)  # 2 s of blank lines, past the 0.5 s read deadline
        assert closed_within(sock, 3)
        assert time.monotonic() - started < 3
