"""The HTTP/1.1 protocol `serve` runs: uvicorn's httptools protocol, with two changes.

1. A request the parser itself refuses (ambiguous framing such as `Content-Length` beside
   `Transfer-Encoding` or two different lengths, a negative length, a NUL in a header, a raw
   non-ASCII byte in the target) never reaches the app; uvicorn answers it with a plain-text
   400. SPEC §5 wants every error body to be JSON `{"detail": ...}`, so this protocol writes
   that instead. The connection is closed afterwards, as uvicorn does: whatever followed the
   refused request on it (a smuggled second request) is never read.
2. uvicorn has no deadline for reading a request: a client that opens a connection and sends
   nothing, or trickles its headers or body a byte at a time, holds a socket forever. Here a
   request must arrive whole within `read_timeout_seconds` of its first byte (or of the
   connection, for the first request); otherwise the connection is closed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PARSER_ERROR_DETAIL = "malformed HTTP request"
REQUEST_READ_TIMEOUT_SECONDS = 30.0


class JsonErrorHttpToolsProtocol(HttpToolsProtocol):
    read_timeout_seconds: float = REQUEST_READ_TIMEOUT_SECONDS
    _read_deadline: asyncio.TimerHandle | None = None

    def send_400_response(self, msg: str) -> None:
        body = json.dumps({"detail": PARSER_ERROR_DETAIL}).encode()
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    # -- the read deadline --------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm_read_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_read_deadline()

    def on_message_complete(self) -> None:
        self._disarm_read_deadline()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_read_deadline()
        super().connection_lost(exc)

    def _arm_read_deadline(self) -> None:
        self._disarm_read_deadline()
        self._read_deadline = self.loop.call_later(self.read_timeout_seconds,
                                                   self._read_timed_out)

    def _disarm_read_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        self._read_deadline = None
        if not self.transport.is_closing():
            self.transport.close()
