"""L1–L6: the signed lifecycle callbacks `installed` and `uninstalled` (SPEC §5 order).

405 / 431 / 413 / 415 are answered before these handlers (router and TransportGuard);
everything after — 401, 400, key fetch, signature, single use — is the core's.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.handlers import HTTPRouteHandler

from adapters.http.transport import JSON_BODY_OPT
from adapters.wiring import Container
from core.connect.tokens import ConnectRequest
from core.describe import INSTALLED_PATH, UNINSTALLED_PATH
from core.lifecycle.install import install, uninstall
from core.model.errors import Unavailable


async def connect_request(request: Request[Any, Any, Any]) -> ConnectRequest:
    """The request as it came over the wire: raw path and query, every Authorization."""
    scope = request.scope
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
    authorization = [
        value.decode("latin-1") for name, value in scope["headers"] if name == b"authorization"
    ]
    return ConnectRequest.from_wire(
        method=scope["method"],
        raw_path=raw_path,
        raw_query=scope.get("query_string", b""),
        authorization=authorization,
        body=await request.body(),
    )


def routes(container: Container) -> list[HTTPRouteHandler]:
    def ports() -> dict[str, Any]:
        if container.lifecycle is None or container.install_keys is None:
            raise Unavailable("app installation is not configured", retry_after=60)
        return {
            "lifecycle": container.lifecycle,
            "keys": container.install_keys,
            "clock": container.clock,
            "settings": container.settings.app,
        }

    @post(
        INSTALLED_PATH,
        opt={JSON_BODY_OPT: True},
        status_code=204,
        summary="Signed `installed` lifecycle callback (L1–L4, L6)",
    )
    async def installed(request: Request[Any, Any, Any]) -> None:
        await install(await connect_request(request), **ports())

    @post(
        UNINSTALLED_PATH,
        opt={JSON_BODY_OPT: True},
        status_code=204,
        summary="Signed `uninstalled` lifecycle callback (L5)",
    )
    async def uninstalled(request: Request[Any, Any, Any]) -> None:
        await uninstall(await connect_request(request), **ports())

    return [installed, uninstalled]
