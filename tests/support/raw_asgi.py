"""One request straight into an ASGI app with its header list exactly as given.

Litestar's test client builds the ASGI scope from httpx's `headers.items()`, which folds a
repeated header into one comma-joined value: a test that sends two `Authorization` headers
through it really sends one, and cannot see the "more than one header" refusal (found in
review, #18). A socket keeps them apart; so does this helper, in process.
"""

from __future__ import annotations

from typing import Any


async def raw_request(
    app: Any, method: str, path: str, headers: list[tuple[str, str]], body: bytes = b"",
    query_string: bytes = b"",
) -> tuple[int, bytes]:
    """(status, body) of one request; the app must already be started (a test client's)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query_string,
        "root_path": "", "server": ("testserver", 80), "client": ("127.0.0.1", 1234),
        "headers": [(b"host", b"testserver"),
                    *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers)],
        "state": {},
    }
    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
