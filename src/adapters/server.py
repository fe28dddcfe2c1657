"""How an ASGI app is served: one place, so the benchmark's baseline is served the same way."""

from __future__ import annotations

from typing import Any


def run_server(app: Any, *, host: str, port: int) -> None:
    """Run `app` with uvicorn (httptools + uvloop when installed) until stopped."""
    import uvicorn

    # No access log: a request line can carry a `jwt=` query parameter. No proxy headers:
    # the base URL comes from configuration only (D2). The 1 MiB h11 limit lets the app's
    # own 431 check answer oversized headers instead of the parser.
    uvicorn.run(app, host=host, port=port, access_log=False, proxy_headers=False,
                server_header=False, log_level="info", h11_max_incomplete_event_size=1 << 20)
