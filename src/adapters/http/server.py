"""How an ASGI app is served: one place, so the benchmark's baseline is served the same way."""

from __future__ import annotations

import errno
import socket
from typing import Any


class CannotListen(Exception):
    """The address or port cannot be bound; the message is one line for the operator."""


def check_can_listen(host: str, port: int, *, option: str = "--port") -> None:
    """§3: refuse a port in use (or an address this machine does not have) before the
    database is opened and the worker started. Binds and releases at once, as uvicorn will
    (SO_REUSEADDR), so a port held only in TIME_WAIT is not refused."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE | socket.AI_NUMERICSERV)
    except socket.gaierror as err:
        raise CannotListen(f"cannot listen on {host}: {err.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise CannotListen(f"port {port} is in use: pass {option}") from None
            if err.errno == errno.EACCES:
                raise CannotListen(
                    f"no permission to listen on port {port}: pass {option} 1024 or above"
                ) from None
            raise CannotListen(f"cannot listen on {host}:{port}: {err.strerror}") from None


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
    # log_config=None: uvicorn's lines go through the one setup of adapters/logs.py.
    from adapters.http.parser import JsonErrorHttpToolsProtocol

    uvicorn.run(app, host=host, port=port, access_log=False, proxy_headers=False,
                server_header=False, log_config=None, http=JsonErrorHttpToolsProtocol)
