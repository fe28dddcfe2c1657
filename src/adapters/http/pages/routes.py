"""§10 routes: the configure page, the issue glance, their POSTs and their static files.

Page loads (GET) are authenticated by `?jwt=` and answer HTML, also when refused (a small
error page: 401 / 400 / 404 / 503, never a stack trace). Page POSTs answer JSON: the transport
guard's 415 first, then the context token (401), the action token (403), the body (400) and
unknown ids (404); errors go through the one exception map (`{"detail": ...}`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.resources import files
from typing import Any, Final

from litestar import Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from adapters.http.body import decode_json
from adapters.http.errors import STATUS_OF, log_unexpected
from adapters.http.pages.rendering import (
    ALL_JS,
    html_response,
    pattern_ancestors,
    render,
    site_ancestors,
)
from adapters.http.transport import JSON_BODY_OPT
from adapters.presenters import binding_json, iso_utc
from adapters.wiring import Container
from core.connect.pages import PageUser, verify_page_action, verify_page_load
from core.connect.tokens import ConnectRequest
from core.describe import CONFIGURE_PATH, ISSUE_GLANCE_PATH, STATIC_PATH
from core.model.bindings import ResolutionStrategy
from core.model.errors import BadRequest, NotFound, ServiceError, Unavailable
from core.pages.configure import (
    PageBind,
    bind_from_page,
    retry_from_page,
    show_configure_page,
    unbind_from_page,
)
from core.pages.glance import show_glance
from ports.journal import Journal
from ports.sentry import SentryApi

AnyRequest = Request[Any, Any, Any]
ACTION_TOKEN_HEADER: Final = "x-action-token"
ORG_PATH: Final = CONFIGURE_PATH + "orgs/{org:str}/"
UNBIND_PATH: Final = CONFIGURE_PATH + "orgs/{org:str}/unbind/"
RETRY_PATH: Final = CONFIGURE_PATH + "dead-letters/{dead_letter_id:str}/retry/"

_STATIC: Final = {
    "pages.js": "text/javascript; charset=utf-8",
    "pages.css": "text/css; charset=utf-8",
    "sentry-glance.svg": "image/svg+xml",
}
_ERROR_TITLES: Final = {
    400: "This page was asked for something it cannot show",
    401: "This page must be opened from Jira",
    403: "This change is not allowed",
    404: "Not found",
    503: "The service is busy",
}
STRATEGY_LABELS: Final = {
    ResolutionStrategy.RESOLVE: "Resolve",
    ResolutionStrategy.RESOLVE_CURRENT_RELEASE: "Resolve in the current release",
    ResolutionStrategy.RESOLVE_NEXT_RELEASE: "Resolve in the next release",
}


def connect_request(request: AnyRequest) -> ConnectRequest:
    scope = request.scope
    return ConnectRequest.from_wire(
        method=request.method,
        raw_path=scope.get("raw_path") or scope["path"].encode("utf-8"),
        raw_query=scope.get("query_string", b""),
        authorization=request.headers.getall("authorization", []),
    )


def status_of(error: ServiceError) -> int:
    """The status the one exception map gives this error (the page shows it as HTML)."""
    return next((code for kind, code in STATUS_OF.items() if isinstance(error, kind)), 500)


def routes(container: Container) -> list[HTTPRouteHandler]:
    settings = container.settings.app
    lookup = container.tenant_lookup or container.tenants
    base_path = settings.base_path
    error_ancestors = pattern_ancestors(settings.jira_hosts)
    assets = {name: (files("adapters.http.pages") / "static" / name).read_bytes()
              for name in _STATIC}

    def error_page(error: Exception, request: AnyRequest) -> Response[str]:
        if not isinstance(error, ServiceError):
            log_unexpected(request, error)  # the type and frames only; the page says no more
            error = ServiceError("internal error")
        status = status_of(error)
        body = render("error.html", title=_ERROR_TITLES.get(status, "Something went wrong"),
                      detail=error.detail if status < 500 else "internal error",
                      static=base_path + STATIC_PATH, all_js=ALL_JS)
        return html_response(body, status=status, ancestors=error_ancestors)

    def sentry_api(glance: bool) -> SentryApi:
        api = (container.glance_sentry or container.sentry) if glance else container.sentry
        if api is None:
            raise Unavailable("Sentry is not configured in this process")
        return api

    def journal() -> Journal:
        if container.journal is None:
            raise Unavailable("the sync state is not available in this process")
        return container.journal

    async def page_user(request: AnyRequest) -> PageUser:
        return await verify_page_load(connect_request(request), tenants=lookup,
                                      settings=settings, clock=container.clock)

    async def action_user(request: AnyRequest) -> PageUser:
        # Two headers read as one value that is no action token: 403, after the 401 checks.
        tokens = request.headers.getall(ACTION_TOKEN_HEADER, [])
        return await verify_page_action(connect_request(request),
                                        ", ".join(tokens) if tokens else None,
                                        tenants=lookup, settings=settings,
                                        clock=container.clock)

    @get(CONFIGURE_PATH, summary="§10 configure page (Connect, ?jwt=)", include_in_schema=False)
    async def configure_page(request: AnyRequest) -> Response[str]:
        try:
            user = await page_user(request)
            view = await show_configure_page(user, bindings=container.admin.bindings,
                                             journal=container.journal, clock=container.clock)
        except Exception as error:  # every refusal and failure is an HTML page, no trace
            return error_page(error, request)
        body = render(
            "configure.html", view=view, static=base_path + STATIC_PATH, all_js=ALL_JS,
            configure_url=base_path + CONFIGURE_PATH, strategies=STRATEGY_LABELS,
            iso_utc=iso_utc, shown_time=shown_time, title="Sentry for Jira",
        )
        return html_response(body, status=200, ancestors=site_ancestors(view.tenant))

    @get(ISSUE_GLANCE_PATH, summary="§10 issue glance (Connect, ?jwt=)", include_in_schema=False)
    async def issue_glance(request: AnyRequest) -> Response[str]:
        try:
            user = await page_user(request)
            keys = request.query_params.getall("issueKey", [])
            if len(keys) != 1:
                raise BadRequest("issueKey must be given once")
            view = await show_glance(user, keys[0], bindings=container.admin.bindings,
                                     links=container.admin.links, sentry=sentry_api(True))
        except Exception as error:  # every refusal and failure is an HTML page, no trace
            return error_page(error, request)
        body = render("glance.html", view=view, static=base_path + STATIC_PATH, all_js=ALL_JS,
                      title="Sentry issues")
        return html_response(body, status=200, ancestors=site_ancestors(user.tenant))

    @post(ORG_PATH, opt={JSON_BODY_OPT: True}, status_code=200, include_in_schema=False)
    async def bind_org(request: AnyRequest, org: FromPath[str]) -> Response[dict[str, Any]]:
        user = await action_user(request)
        command = PageBind.parse(org, decode_json(await request.body()))
        binding = await bind_from_page(
            user, command, tenants=container.tenants, bindings=container.admin.bindings,
            sentry=sentry_api(False), sentry_hosts=settings.sentry_hosts,
        )
        return _json({"status": "saved", "binding": binding_json(binding)})

    @post(UNBIND_PATH, opt={JSON_BODY_OPT: True}, status_code=200, include_in_schema=False)
    async def unbind_org(request: AnyRequest, org: FromPath[str]) -> Response[dict[str, Any]]:
        user = await action_user(request)
        await unbind_from_page(user, org, tenants=container.tenants,
                               bindings=container.admin.bindings)
        return _json({"status": "unbound", "org": org})

    @post(RETRY_PATH, opt={JSON_BODY_OPT: True}, status_code=202, include_in_schema=False)
    async def retry(request: AnyRequest, dead_letter_id: FromPath[str]
                    ) -> Response[dict[str, Any]]:
        user = await action_user(request)
        number = await retry_from_page(user, dead_letter_id, journal=journal(),
                                       clock=container.clock)
        container.wake_worker()
        return _json({"id": number, "status": "queued"}, status=202)

    @get(STATIC_PATH + "/{name:str}", include_in_schema=False)
    async def static(name: FromPath[str]) -> Response[bytes]:
        if name not in assets:
            raise NotFound("no such file")
        return Response(assets[name], media_type=_STATIC[name], headers={
            "X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=300"})

    return [configure_page, issue_glance, bind_org, unbind_org, retry, static]


def shown_time(moment: datetime) -> str:
    """A journal time as people read it (the `datetime` attribute keeps ISO 8601)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _json(body: dict[str, Any], status: int = 200) -> Response[dict[str, Any]]:
    return Response(body, status_code=status, headers={"Cache-Control": "no-store"})
