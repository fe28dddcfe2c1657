"""Slow and silent clients are cut off: a request must arrive whole within the read deadline."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from adapters.http.app import create_app
from adapters.http.parser import JsonErrorHttpToolsProtocol
from tests.support.builders import a_fake_container
from tests.support.process import free_port

pytestmark = pytest.mark.e2e


class ShortDeadline(JsonErrorHttpToolsProtocol):
    read_timeout_seconds = 0.5


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(create_app(a_fake_container()), host="127.0.0.1", port=port,
                            http=ShortDeadline, log_level="warning", lifespan="off")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield port
    instance.should_exit = True
    thread.join(timeout=10)


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
        for _ in range(8):  # 0.8 s of trickling, past the 0.5 s deadline
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
            time.sleep(0.1)
        assert closed_within(sock, 3)


def test_a_prompt_request_on_a_kept_alive_connection_is_served(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as sock:
        for _ in range(2):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(3)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            time.sleep(0.3)  # idle between requests, within uvicorn's keep-alive
