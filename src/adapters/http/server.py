"""How an ASGI app is served: one place, so the benchmark's baseline is served the same way."""

from __future__ import annotations

from typing import Any


def run_server(app: Any, *, host: str, port: int) -> None:
    """Run `app` with uvicorn (httptools + uvloop when installed) until stopped."""
    import gc

    import uvicorn

    # The app, its routes and every imported module are long-lived: move them out of the
    # collector's reach, and collect the young generation less often. Without this a full
    # collection every few thousand requests walks the whole heap and stalls the event loop
    # for tens of milliseconds (p99 40 ms → 8 ms in docs/performance.md).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 100, 100)

    # No access log: a request line can carry a `jwt=` query parameter. No proxy headers:
    # the base URL comes from configuration only (D2). The httptools protocol with a 16 KiB
    # bound on each request head, a read deadline and parser refusals answered as JSON (§5).
    from adapters.http.parser import JsonErrorHttpToolsProtocol

    uvicorn.run(app, host=host, port=port, access_log=False, proxy_headers=False,
                server_header=False, log_level="info", http=JsonErrorHttpToolsProtocol)
