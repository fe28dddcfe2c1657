"""A real install-key server on loopback: PEMs by kid, with switchable failures.

Counts requests per path so tests can assert "no key fetched" (SPEC §4.3: no egress
before the kid shape is checked, one fetch for a flood of one unknown kid).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Behaviour = Literal["pem", "404", "html", "500", "hang", "redirect"]


class KeyServer:
    def __init__(self, prefix: str = "/keys") -> None:
        self.prefix = prefix.rstrip("/")
        self.keys: dict[str, str] = {}
        self.behaviours: dict[str, Behaviour] = {}
        self.requests: Counter[str] = Counter()
        self.hang_seconds = 5.0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.prefix}"

    def serve(self, kid: str, pem: str) -> None:
        self.keys[kid] = pem
        self.behaviours[kid] = "pem"

    def behave(self, kid: str, behaviour: Behaviour) -> None:
        self.behaviours[kid] = behaviour

    def fetches(self, kid: str) -> int:
        return self.requests[f"{self.prefix}/{kid}"]

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                with server._lock:
                    server.requests[self.path] += 1
                kid = (
                    self.path[len(server.prefix) + 1 :]
                    if self.path.startswith(server.prefix + "/")
                    else None
                )
                behaviour = server.behaviours.get(kid or "", "404")
                if behaviour == "hang":
                    server._stopping.wait(server.hang_seconds)
                    self._answer(500, b"too late", "text/plain")
                elif behaviour == "pem" and kid is not None:
                    self._answer(200, server.keys[kid].encode(), "application/x-pem-file")
                elif behaviour == "html":
                    self._answer(200, b"<html><body>Not a key</body></html>", "text/html")
                elif behaviour == "500":
                    self._answer(500, b"<html>oops</html>", "text/html")
                elif behaviour == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._answer(404, b"<Error>NoSuchKey</Error>", "application/xml")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (timeout tests)

        return Handler


@contextmanager
def running_key_server() -> Iterator[KeyServer]:
    server = KeyServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
