"""The HTTP/1.1 protocol `serve` runs: uvicorn's httptools protocol, with three changes.

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
3. uvicorn and httptools put no bound on a request head: they buffer a request line or
   headers of any size, so one unauthenticated connection could push the server to
   gigabytes. httptools calls `on_header` only once a header has ended, growing its value by
   concatenation meanwhile (16 MB in one value: 6 s of CPU), so the count is kept on the
   bytes fed to the parser, not in `on_header`.
   Here the bytes of each request head are counted as they arrive, and the parser is never
   fed more than `max_head_bytes` (SPEC §5: 16 KiB in all) of one head (twice that for a
   head pipelined into the same read as the end of the request before it). Past that, reading
   stops: a request line still unfinished is answered 414; otherwise the app is handed the
   request with the headers parsed so far, no body, and a scope mark
   (`HEAD_TOO_LARGE`) so that its transport guard answers in SPEC order (405 before 431).
   The connection is closed after that answer; nothing more of it is read.
4. uvicorn writes a response's head and its body with two socket writes: two TCP segments,
   and on loopback two trips through the kernel's stack, the costliest single item of a small
   JSON answer (SPEC §7; docs/performance.md). Here the head is held until the first body
   message and both go out in one write (`OneWriteCycle`); a response without a body
   message still gets its head.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

PARSER_ERROR_DETAIL = "malformed HTTP request"
URI_TOO_LONG_DETAIL = "request line is too long"
REQUEST_READ_TIMEOUT_SECONDS = 30.0
MAX_HEAD_BYTES = 16 * 1024  # SPEC §5: request line and headers, in all
HEAD_TOO_LARGE = "sentry_jira.head_too_large"  # ASGI scope extension the guard answers 431 to


class _HeldWrites:
    """Stands in for the transport while uvicorn writes a response head: keeps the bytes."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data


class _HeadFirst:
    """Stands in for the transport while uvicorn writes a body: the held head goes first, in
    the same write; `close` (no keep-alive) sends a head not yet written before closing."""

    __slots__ = ("head", "transport")

    def __init__(self, transport: Any, head: bytes) -> None:
        self.transport = transport
        self.head = head

    def write(self, data: bytes) -> None:
        if self.head:
            data, self.head = self.head + data, b""
        self.transport.write(data)

    def flush(self) -> None:
        if self.head:
            head, self.head = self.head, b""
            self.transport.write(head)

    def close(self) -> None:
        self.flush()
        self.transport.close()


class OneWriteCycle(RequestResponseCycle):
    """uvicorn's request/response cycle, whose response head waits for the first body message
    and leaves in the same socket write. uvicorn itself builds and checks every header;
    only where its bytes go changes."""

    _held_head = b""

    async def send(self, message: Any) -> None:
        if not self.response_started and message["type"] == "http.response.start":
            transport, held = self.transport, _HeldWrites()
            self.transport = held  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self.transport = transport
            self._held_head = held.data
            return
        head = self._held_head
        if not head:
            await super().send(message)
            return
        self._held_head = b""
        transport, first = self.transport, _HeadFirst(self.transport, head)
        self.transport = first  # type: ignore[assignment]
        try:
            await super().send(message)
        finally:
            self.transport = transport
            if not self.disconnected:
                first.flush()  # no body was written (HEAD, or an error): the head alone


class JsonErrorHttpToolsProtocol(HttpToolsProtocol):
    read_timeout_seconds: float = REQUEST_READ_TIMEOUT_SECONDS
    max_head_bytes: int = MAX_HEAD_BYTES
    _read_deadline: asyncio.TimerHandle | None = None
    # The head being read: bytes fed to the parser, whether its request line has ended.
    _in_head: bool = True
    _head_bytes: int = 0
    _head_started: bool = False
    _request_line_done: bool = False
    _refused: bool = False  # the head overflowed: nothing more is read on this connection
    _restarted: bool = False  # a request ended (and the next head began) in the last feed

    def send_400_response(self, msg: str) -> None:
        self._send_json_error(b"400 Bad Request", PARSER_ERROR_DETAIL)

    def _send_json_error(self, status: bytes, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        head = [b"HTTP/1.1 " + status + b"\r\n"]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    # -- the head limit -----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self.flow.pause_reading()  # a pipelined answer before ours resumed it
            return
        while data:
            if not self._in_head:
                super().data_received(data)
                return
            room = self.max_head_bytes - self._head_bytes
            if room <= 0:
                self._refuse_oversized_head()
                return
            piece, data = data[:room], data[room:]
            self._note_request_line(piece)
            # Counted before feeding: when the head ends inside `piece`, the parser's
            # callbacks reset the count, so the rest of `piece` (body, next request) is not
            # charged to this head. A next head begun inside `piece` is charged from the
            # next chunk on (httptools tells no offsets): it may reach 32 KiB, never more,
            # and no request is refused under 16 KiB.
            self._head_bytes += len(piece)
            self._restarted = False
            super().data_received(piece)
            if self.transport.is_closing():
                return
            if self._restarted and self._in_head:
                self._note_head_begun_inside(piece)

    def _note_request_line(self, piece: bytes) -> None:
        if self._request_line_done:
            return
        if not self._head_started:
            piece = piece.lstrip(b"\r\n")  # blank lines before a request are skipped
            self._head_started = bool(piece)
        self._request_line_done = b"\n" in piece

    def _note_head_begun_inside(self, piece: bytes) -> None:
        """Whether the request line of a head that began inside `piece` has ended: its URL
        so far is the tail's, so an end of line after its last occurrence ends it."""
        if not self._head_started or not self.url:
            return
        at = piece.rfind(b" " + self.url)
        self._request_line_done = bool(self.headers) or (at >= 0 and b"\n" in piece[at:])

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # Every cycle, pipelined ones too, starts here: its responses go out in one write.
        cycle.__class__ = OneWriteCycle
        super()._start_asgi_task(cycle, app)

    def _start_next_head(self) -> None:
        self._restarted = True
        self._in_head = True
        self._head_bytes = 0
        self._head_started = False
        self._request_line_done = False

    def _refuse_oversized_head(self) -> None:
        """Stop reading; 414 for an unfinished request line, else the app answers 405/431."""
        self._refused = True
        self._disarm_read_deadline()
        self.flow.pause_reading()
        previous = self.cycle
        busy = previous is not None and not previous.response_complete
        if not self._request_line_done:
            if busy:
                previous.keep_alive = False  # no answer can overtake it: close after it
            else:
                self._send_json_error(b"414 URI Too Long", URI_TOO_LONG_DETAIL)
            return
        self.scope["extensions"] = {HEAD_TOO_LARGE: {}}
        try:
            super().on_headers_complete()  # the scope and the app's cycle, as for any request
        except httptools.HttpParserError:
            self.send_400_response(PARSER_ERROR_DETAIL)  # a request target that cannot parse
            return
        self.cycle.keep_alive = False
        self.cycle.more_body = False  # no body is read after a refused head
        self.cycle.message_event.set()

    # -- the deadlines: reading a request, idling between requests ---------------------------
    # One timer per connection instead of one armed and cancelled per request (uvicorn's
    # keep-alive timer and our read deadline: ~1.6 µs of CPU each per request, SPEC §7). A
    # request only notes when its reading began and when the connection fell idle; the timer,
    # when it fires, closes the connection if a deadline has passed, else sleeps until the
    # earliest one still running. In steady keep-alive traffic it fires once per
    # keep-alive timeout, finds nothing due and sleeps on.

    _reading_since: float | None = None  # loop time the request being read began
    _idle_since: float | None = None  # loop time the last response completed (keep-alive)
    _watchdog_at: float = 0.0  # when `_read_deadline` fires

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        now = self.loop.time()
        self._reading_since = now  # the first request: within the deadline of the connection
        self._watch(now + self.read_timeout_seconds)

    def _unset_keepalive_if_required(self) -> None:
        # uvicorn calls this for every read (and when a connection ends): bytes after a
        # response are the next request's first, even blank lines the parser skips.
        self._idle_since = None
        if self._reading_since is None and self.parser is not None:
            self._reading_since = now = self.loop.time()
            self._watch(now + self.read_timeout_seconds)

    def on_message_begin(self) -> None:
        self._head_started = True
        super().on_message_begin()
        if self._reading_since is None:  # pipelined behind a request that just ended
            self._reading_since = now = self.loop.time()
            self._watch(now + self.read_timeout_seconds)

    def on_message_complete(self) -> None:
        self._reading_since = None
        self._start_next_head()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # uvicorn's, with the keep-alive deadline kept by the connection's one timer.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = now = self.loop.time()
        self._watch(now + self.timeout_keep_alive)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._disarm_read_deadline()  # after uvicorn's, which reports a last "read"

    def _watch(self, due: float) -> None:
        """Have the timer fire by `due` (a timer already due sooner is kept)."""
        if self._read_deadline is not None:
            if self._watchdog_at <= due:
                return
            self._read_deadline.cancel()
        self._watchdog_at = due
        self._read_deadline = self.loop.call_at(due, self._deadlines_due)

    def _disarm_read_deadline(self) -> None:
        self._reading_since = self._idle_since = None
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _deadlines_due(self) -> None:
        self._read_deadline = None
        now = self.loop.time()
        dues = []
        if self._reading_since is not None:
            dues.append(self._reading_since + self.read_timeout_seconds)
        if self._idle_since is not None:
            dues.append(self._idle_since + self.timeout_keep_alive)
        if not dues:
            return  # a request is being answered: its end arms the timer again
        if min(dues) <= now:
            if not self.transport.is_closing():
                self.transport.close()
            return
        self._watch(min(dues))
