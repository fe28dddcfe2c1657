"""Transport checks of SPEC §5 that run after routing (404/405) and before any handler.

Order on the Connect POST routes: 405 (Litestar's router, with `Allow`) → 431 → 413 → 415.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

from litestar.types import ASGIApp, Receive, Scope, Send

from adapters.http.parser import HEAD_TOO_LARGE

MAX_HEADER_BYTES = 16 * 1024
JSON_BODY_OPT = "json_body"  # route handler opt: the route takes a JSON request body
ALLOWED_METHODS_OPT = "allowed_methods"  # raw ASGI routes: the methods they serve


async def send_json_error(
    send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer with the JSON error shape without touching the request body."""
    body = json.dumps({"detail": detail}).encode()
    start: Any = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *(headers or []),
        ],
    }
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)


class TransportGuard:
    """ASGI middleware: header size (431), declared body size (413), content type (415), and
    the admin gate of the requests Litestar answers by itself (OPTIONS, /schema: 401).

    One middleware for all of it: every extra layer costs every request, the ack path's too.
    """

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, admin_gate: Callable[[Scope], None] | None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.admin_gate = admin_gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if cast(str, scope["type"]) != "http":
            await self.app(scope, receive, send)
            return
        if self.admin_gate is not None:
            self.admin_gate(scope)  # raises Unauthorized (401) before anything else is read
        handler: Any = scope.get("route_handler")
        opt = handler.opt if handler is not None else {}
        allowed = opt.get(ALLOWED_METHODS_OPT)
        if allowed is not None and scope.get("method") not in allowed:
            # Raw ASGI routes accept every method: answer 405 here, before 431/413/415.
            await send_json_error(send, 405, "Method Not Allowed",
                                  [(b"allow", ", ".join(sorted(allowed)).encode())])
            return
        # One pass over the headers: their size (431), Content-Length and Content-Type.
        size = 0
        content_length: bytes | None = None
        content_type: bytes | None = None
        for name, value in scope["headers"]:
            size += len(name) + len(value) + 4
            if name == b"content-length":
                content_length = value
            elif name == b"content-type":
                content_type = value
        # HEAD_TOO_LARGE: the protocol stopped reading a head past 16 KiB (adapters/http/parser.py).
        if size > MAX_HEADER_BYTES or HEAD_TOO_LARGE in (scope.get("extensions") or {}):
            await send_json_error(send, 431, "request headers are too large")
            return
        if content_length is not None:
            if not content_length.isdigit():
                await send_json_error(send, 400, "invalid Content-Length")
                return
            if int(content_length) > self.max_body_bytes:
                await send_json_error(send, 413, "request body is too large")
                return
        if opt.get(JSON_BODY_OPT) and not _is_json(content_type):
            await send_json_error(send, 415, "the body must be application/json")
            return
        await self.app(scope, receive, send)


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json"


def guard_factory(max_body_bytes: int, admin_gate: Callable[[Scope], None] | None = None) -> Any:
    """A middleware factory for Litestar's `middleware=[...]`."""

    def factory(app: ASGIApp) -> ASGIApp:
        return TransportGuard(app, max_body_bytes=max_body_bytes, admin_gate=admin_gate)

    return factory
