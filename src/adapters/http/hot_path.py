"""The acknowledgement routes without Litestar's per-request work (SPEC §7).

Litestar's routing, scope state, exception middleware and route dispatch cost about 12 µs of
CPU per request (measured in process: 38–40 µs for an acknowledgement through the whole app,
26–27 µs for the same route called directly) — a sixth of the acknowledgement path's CPU.
`ServiceApp` is the Litestar application with lanes beside it (the Connect and the Forge
issue-updated routes): a request that is plainly a `POST` to a lane's exact path goes straight
to its route, behind the same transport guard
(405/431/413/415) and with errors answered by the same exception map
(adapters/http/errors.py); every other request — another method, another spelling of the
path, a `root_path`, a Host header Litestar might refuse, lifespan — is Litestar's, as before.

What the lane sets in the scope is what Litestar's router would have set for that path (the
app, the normalised path, no path parameters, the route handler and its template), so the
route, the guard and the refusal log see the same request either way;
tests/http/test_hot_path.py sends the same requests through both and compares the answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from litestar import Litestar, Request
from litestar.handlers import ASGIRouteHandler
from litestar.types import Message, Receive, Scope, Send

from adapters.http.errors import EXCEPTION_HANDLERS

# Stricter than the Host check of Litestar's router (which answers 400 to what it refuses):
# a request whose first Host header is anything else is left to Litestar.
_PLAIN_HOST = re.compile(rb"\A[0-9A-Za-z.\-:\[\]]*\Z")


class _Lane:
    __slots__ = ("app", "handler", "path")

    def __init__(self, app: Callable[[Scope, Receive, Send], Any], path: str,
                 handler: ASGIRouteHandler) -> None:
        self.app = app  # the transport guard around the route
        # The route has no parameters: its template is the scope path Litestar's router
        # would leave (normalised, no trailing slash).
        self.path = path
        self.handler = handler


class ServiceApp(Litestar):
    """Litestar, with direct lanes for the hot `POST` routes (see the module's docstring)."""

    __slots__ = ("_lanes",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lanes: dict[str, _Lane] = {}

    def add_lane(self, base_path: str, handler: ASGIRouteHandler,
                 guarded: Callable[[Scope, Receive, Send], Any]) -> None:
        """Serve `POST` to the route `handler`'s one path under `base_path` (with or without
        its trailing slash) by `guarded`, the handler's function behind the transport guard."""
        [path] = handler.paths
        normalised = (base_path + path).rstrip("/") or "/"
        lane = _Lane(guarded, normalised, handler)
        self._lanes[normalised] = lane
        self._lanes[normalised + "/"] = lane

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            lane = self._lanes.get(scope["path"])
            if (lane is not None and scope["method"] == "POST" and not scope.get("root_path")
                    and _plain_host(scope["headers"])):
                await self._serve_lane(lane, scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _serve_lane(self, lane: _Lane, scope: Scope, receive: Receive,
                          send: Send) -> None:
        scope["app"] = scope["litestar_app"] = self
        scope.setdefault("state", {})
        scope["path"] = lane.path
        scope["path_params"] = {}
        scope["route_handler"] = lane.handler
        scope["path_template"] = lane.path
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await lane.app(scope, receive, tracked)
        except Exception as error:
            if started:  # as Litestar: an answer already begun cannot be replaced
                raise
            await self._answer_error(scope, receive, send, error)

    async def _answer_error(self, scope: Scope, receive: Receive, send: Send,
                            error: Exception) -> None:
        """The exception map's answer, as Litestar's exception middleware gives it."""
        handler = next(EXCEPTION_HANDLERS[kind] for kind in type(error).__mro__
                       if kind in EXCEPTION_HANDLERS)
        request: Request[Any, Any, Any] = self.request_class(scope=scope, receive=receive,
                                                             send=send)
        response = handler(request, error)
        await response.to_asgi_response(app=None, request=request)(scope, receive, send)


def _plain_host(headers: Any) -> bool:
    for name, value in headers:
        if name == b"host":
            return _PLAIN_HOST.match(value) is not None
    return True
