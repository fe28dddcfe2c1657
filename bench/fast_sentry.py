"""A fast fake Sentry for the end-to-end benchmark: its own process, one asyncio loop.

`python bench/fast_sentry.py <token>` prints its port on the first line of stdout, then
answers every W8 issue write (`PUT /api/0/organizations/<org>/issues/<id>/` with the org's
bearer token) at once with 200 `{}`: HTTP/1.1 keep-alive, no thread per request, so that the
fake costs the benchmark as little CPU as possible. Other requests, or a wrong token: 404 /
401. It notes every write (time.monotonic(), which is one clock for every process of the
machine, the issue id and the body's `status`); `GET /__writes?since=<n>` answers those from
the n-th on as JSON `[[t, issue_id, status], …]`. The test suite's fake Sentry
(`tests/support/fake_sentry.py`, a thread per connection) checks more and is kept for tests.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
import time
from typing import Any

ISSUE_WRITE = re.compile(rb"^PUT /api/0/organizations/[A-Za-z0-9_-]+/issues/([A-Za-z0-9_-]+)/ ")
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def _answer(status: int, body: bytes) -> bytes:
    reason = {200: "OK", 401: "Unauthorized", 404: "Not Found"}[status]
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class FakeSentryProtocol(asyncio.Protocol):
    def __init__(self, writes: list[tuple[float, str, str]], authorization: bytes) -> None:
        self.writes = writes
        self.authorization = authorization
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's transports are not asyncio.Transport subclasses
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out: list[bytes] = []
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buffer[:end]
            length = 0
            authorized = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                lowered = name.strip().lower()
                if lowered == b"content-length":
                    length = int(value.strip())
                elif lowered == b"authorization":
                    authorized = value.strip() == self.authorization
            if len(self.buffer) < end + 4 + length:
                break
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            out.append(self._handle(head, body, authorized))
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    def _handle(self, head: bytes, body: bytes, authorized: bool) -> bytes:
        if head.startswith(b"GET /__writes?since="):
            since = int(head.split(b"=", 1)[1].split(b" ", 1)[0])
            return _answer(200, json.dumps(self.writes[since:]).encode())
        match = ISSUE_WRITE.match(head)
        if match is None:
            return _answer(404, b'{"detail": "not found"}')
        if not authorized:
            return _answer(401, b'{"detail": "invalid token"}')
        try:
            status = json.loads(body).get("status", "")
        except (ValueError, AttributeError):
            status = ""
        self.writes.append((time.monotonic(), match.group(1).decode(), str(status)))
        return OK


async def serve(token: str) -> None:
    writes: list[tuple[float, str, str]] = []
    authorization = f"Bearer {token}".encode()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: FakeSentryProtocol(writes, authorization), "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    await server.serve_forever()


def main(argv: Any = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        pass
    asyncio.run(serve(args[0]))


if __name__ == "__main__":
    main()
