"""Hostile request heads against a real `sentry-jira serve` process (issue 11, item 2; SPEC §5).

A request line and headers are bounded at 16 KiB in all, counted as they arrive: past that
the server stops reading, answers 414 (request line unfinished) or 431 (405 first where the
method is wrong, SPEC §5 order) with the JSON error shape, and closes the connection. The
server process's memory is read from /proc; bytes are counted on the client's socket.
Loopback only.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from core.describe import ISSUE_UPDATED_PATH as WEBHOOK
from tests.e2e.test_hostile import assert_error
from tests.support.process import free_port, running_server
from tests.support.raw_http import LOOPBACK, RawResponse, connect, read_response, request_head

pytestmark = pytest.mark.e2e

HEAD_LIMIT = 16 * 1024  # SPEC §5
SIXTEEN_MB = 16 * 1024 * 1024
CUT_BEFORE = 64 * 1024


class Server:
    def __init__(self, url: str, port: int, pid: int) -> None:
        self.url = url
        self.port = port
        self.pid = pid

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS line")

    def healthy(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as fresh:
            assert fresh.get("/health").status_code == 200


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("hostile-protocol")
    port = free_port()
    env = {"SENTRY_JIRA_DATABASE": str(directory / "db.sqlite")}
    with running_server(env, port=port, log=directory / "server.log") as (url, proc):
        yield Server(url, port, proc.pid)


def many_headers_head() -> Iterator[bytes]:
    """A 16 MB head of 2,000 8 KB headers, never finished (no blank line)."""
    yield b"POST " + WEBHOOK.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    value = b"v" * 8192
    for n in range(SIXTEEN_MB // len(value)):
        yield b"X-Pad-%d: " % n + value + b"\r\n"


def one_header_head() -> Iterator[bytes]:
    """A 16 MB head of one header value, never finished."""
    yield b"POST " + WEBHOOK.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: "
    for _ in range(SIXTEEN_MB // 8192):
        yield b"v" * 8192


def slices(pieces: Iterator[bytes], size: int) -> Iterator[bytes]:
    buffer = b""
    for piece in pieces:
        buffer += piece
        while len(buffer) >= size:
            yield buffer[:size]
            buffer = buffer[size:]
    if buffer:
        yield buffer


def send_until_cut(sock: socket.socket, head: Iterator[bytes], *, paced_bytes: int) -> int:
    """Send `head` 1 KiB at a time; return the bytes sent before the server closed or
    answered. The first `paced_bytes` go out 4 KiB per 10 ms: a server descheduled on a
    loaded machine must not let the kernel's buffers, rather than the server, swallow them."""
    sent = 0
    sock.settimeout(30)
    for piece in slices(head, 1024):
        if _answered_or_closed(sock):
            return sent
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            return sent
        sent += len(piece)
        if sent <= paced_bytes and sent % 4096 == 0:
            time.sleep(0.01)
    return sent


def _answered_or_closed(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)  # an answer, or b"" for a close: either way, cut
        return True
    except BlockingIOError:
        return False
    except ConnectionError:
        return True
    finally:
        sock.settimeout(30)


def small_send_buffer(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(10)
    sock.connect((LOOPBACK, port))
    return sock


def response_to(port: int, data: bytes) -> RawResponse:
    with connect(port) as sock:
        sock.sendall(data)
        return read_response(sock, deadline=time.monotonic() + 20)


def read_responses(sock: socket.socket, count: int) -> list[RawResponse]:
    """`count` Content-Length framed responses from one connection (pipelined answers may
    share one read, which `read_response` would drop)."""
    buffer = b""
    responses: list[RawResponse] = []
    deadline = time.monotonic() + 20
    while len(responses) < count:
        head, blank, rest = buffer.partition(b"\r\n\r\n")
        if blank:
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip()
                       for k, _, v in (line.partition(":") for line in lines[1:])}
            length = int(headers["content-length"])
            if len(rest) >= length:
                responses.append(RawResponse(int(lines[0].split()[1]), headers, rest[:length]))
                buffer = rest[length:]
                continue
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        more = sock.recv(65536)
        if not more:
            raise ConnectionError(f"closed after {len(responses)} of {count} responses")
        buffer += more
    return responses


def assert_json_error(response: RawResponse, status: int) -> None:
    assert response.status == status, (response.status, response.body[:200])
    assert response.headers["content-type"].startswith("application/json")
    body = json.loads(response.body)
    assert set(body) == {"detail"} and body["detail"]


# -- the cut ----------------------------------------------------------------------------------


@pytest.mark.parametrize("head", [many_headers_head, one_header_head], ids=["2000x8KB", "1x16MB"])
def test_S5_16_MB_of_headers_on_one_connection_are_cut_before_64_KB(
    server: Server, head: Callable[[], Iterator[bytes]]
) -> None:
    with small_send_buffer(server.port) as sock:
        sent = send_until_cut(sock, head(), paced_bytes=256 * 1024)
    assert sent < CUT_BEFORE, f"the server read on to {sent} bytes"
    server.healthy()


def test_S5_headers_of_16_MB_on_eight_connections_leave_the_server_rss_under_16_MB(
    server: Server,
) -> None:
    server.healthy()
    before = server.rss_bytes()
    held: list[socket.socket] = []
    try:
        for _ in range(8):
            sock = connect(server.port, timeout=30)
            held.append(sock)
            try:
                for piece in slices(many_headers_head(), 256 * 1024):
                    sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                pass
        # Measured while every connection is still open on the client's side.
        grown = server.rss_bytes() - before
    finally:
        for sock in held:
            sock.close()
    assert grown < 16 * 1024 * 1024, f"RSS grew by {grown // 1024} KiB"
    server.healthy()


# -- the answers --------------------------------------------------------------------------------


def test_S5_a_request_line_over_16_KiB_is_414_json(server: Server) -> None:
    path = "/health?pad=" + "a" * 17_000
    assert_json_error(response_to(server.port, request_head("GET", path, [])), 414)
    server.healthy()


def test_S5_an_unfinished_request_line_over_16_KiB_is_414_json(server: Server) -> None:
    assert_json_error(response_to(server.port, b"GET /" + b"a" * HEAD_LIMIT), 414)


def test_S5_headers_over_16_KiB_are_431_json(server: Server) -> None:
    head = request_head("POST", WEBHOOK, [("Content-Type", "application/json"),
                                         *(("X-Pad", "p" * 4000) for _ in range(5))])
    assert_json_error(response_to(server.port, head), 431)


def test_S5_an_unfinished_head_over_16_KiB_on_a_get_route_is_431_json(server: Server) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"p" * HEAD_LIMIT
    assert_json_error(response_to(server.port, head), 431)


def test_S5_405_still_comes_before_431_past_the_protocol_limit(server: Server) -> None:
    head = request_head("GET", WEBHOOK, [("X-Pad", "p" * 20_000)])
    response = response_to(server.port, head)
    assert_json_error(response, 405)
    assert "POST" in response.headers["allow"]


def test_S5_a_request_just_under_16_KiB_is_served(server: Server) -> None:
    head = request_head("GET", "/health?pad=" + "a" * 8000, [("X-Pad", "p" * 7000)])
    assert len(head) < HEAD_LIMIT
    assert response_to(server.port, head).status == 200


def test_S5_the_refusal_goes_through_httpx_as_json(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.get("/health", headers={"X-Pad": "p" * 20_000})
    assert_error(response, 431)


# -- keep-alive ---------------------------------------------------------------------------------


def test_S5_the_limit_is_per_request_on_a_kept_alive_connection(server: Server) -> None:
    """Five requests of 12 KiB heads on one connection (60 KiB in all): each is served."""
    head = request_head("GET", "/health", [("X-Pad", "p" * 12_000)])
    with connect(server.port) as sock:
        for _ in range(5):
            sock.sendall(head)
            assert read_response(sock, deadline=time.monotonic() + 20).status == 200


def test_S5_pipelined_requests_under_the_limit_are_all_served(server: Server) -> None:
    head = request_head("GET", "/health", [("X-Pad", "p" * 12_000)])
    with connect(server.port) as sock:
        sock.sendall(head * 4)
        statuses = [response.status for response in read_responses(sock, 4)]
    assert statuses == [200] * 4


def test_S5_a_kept_alive_connection_is_closed_after_an_oversized_head(server: Server) -> None:
    small = request_head("GET", "/health", [])
    big = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"p" * HEAD_LIMIT
    with connect(server.port) as sock:
        sock.sendall(small)
        assert read_response(sock, deadline=time.monotonic() + 20).status == 200
        sock.sendall(big)
        assert_json_error(read_response(sock, deadline=time.monotonic() + 20), 431)
        sock.settimeout(10)
        try:
            assert sock.recv(1024) == b""
        except ConnectionResetError:
            pass


def test_S5_an_oversized_head_pipelined_behind_a_request_is_answered_after_it(
    server: Server,
) -> None:
    """A head that starts in the same read as the end of the request before it is charged
    from the next read on (http_parser.py): past 32 KiB it is refused all the same."""
    small = request_head("GET", "/health", [])
    big = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"p" * (2 * HEAD_LIMIT)
    with connect(server.port) as sock:
        sock.sendall(small + big)
        first, second = read_responses(sock, 2)
    assert first.status == 200
    assert_json_error(second, 431)
