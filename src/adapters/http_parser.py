"""The HTTP/1.1 protocol `serve` runs: uvicorn's httptools protocol, with one change.

A request the parser itself refuses (ambiguous framing such as `Content-Length` beside
`Transfer-Encoding` or two different lengths, a negative length, a NUL in a header, a raw
non-ASCII byte in the target) never reaches the app; uvicorn answers it with a plain-text
400. SPEC §5 wants every error body to be JSON `{"detail": ...}`, so this protocol writes
that instead. The connection is closed afterwards, as uvicorn does: whatever followed the
refused request on it (a smuggled second request) is never read.
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PARSER_ERROR_DETAIL = "malformed HTTP request"


class JsonErrorHttpToolsProtocol(HttpToolsProtocol):
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
