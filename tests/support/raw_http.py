"""HTTP/1.1 over a bare socket, for what an HTTP client library won't do: bodies that never
end, headers sent one byte at a time, connections that send nothing. Loopback only.
"""

from __future__ import annotations

import select
import socket
import time

import attrs

LOOPBACK = "127.0.0.1"


@attrs.frozen
class RawResponse:
    status: int
    headers: dict[str, str]  # names lower-cased; a repeated header keeps the last value
    body: bytes


def connect(port: int, *, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def request_head(method: str, path: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {LOOPBACK}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    """One chunk of a `Transfer-Encoding: chunked` body."""
    return b"%x\r\n" % len(data) + data + b"\r\n"


def read_response(sock: socket.socket, *, deadline: float) -> RawResponse:
    """Read one response (Content-Length framed, or up to close) before `deadline`."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        buffer += _recv(sock, deadline)
    head, _, rest = buffer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    status = int(status_line.split()[1])
    if status in (204, 304) or status < 200:
        return RawResponse(status, headers, b"")  # no body, whatever the headers say
    length = int(headers.get("content-length", "-1"))
    while length < 0 or len(rest) < length:
        try:
            more = _recv(sock, deadline)
        except ConnectionError:
            break
        if not more:
            break
        rest += more
    return RawResponse(status, headers, rest if length < 0 else rest[:length])


def _recv(sock: socket.socket, deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("no complete response before the deadline")
    sock.settimeout(remaining)
    data = sock.recv(65536)
    if not data and remaining > 0:
        raise ConnectionError("the server closed the connection before answering")
    return data


def send_until_answered(
    sock: socket.socket, pieces: list[bytes], *, deadline: float
) -> tuple[int, bool]:
    """Send `pieces` in order, stopping as soon as the server has something to say.

    Returns (bytes sent, whether the server spoke before every piece was sent).
    """
    sent = 0
    sock.setblocking(False)
    try:
        for piece in pieces:
            view = memoryview(piece)
            while view:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the server neither read nor answered before the deadline")
                readable, writable, _ = select.select([sock], [sock], [], remaining)
                if readable:
                    return sent, True
                if writable:
                    try:
                        count = sock.send(view)
                    except BlockingIOError:
                        continue
                    except (BrokenPipeError, ConnectionResetError):
                        return sent, True
                    sent += count
                    view = view[count:]
        return sent, False
    finally:
        sock.setblocking(True)
