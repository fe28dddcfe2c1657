"""The one place core errors become status codes; every error body is `{"detail": ...}`."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from adapters.logs import refusals
from core.model.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    SentryError,
    ServiceError,
    Unauthorized,
    Unavailable,
    UpstreamError,
    UpstreamNotReady,
    UpstreamRateLimited,
    UpstreamRefused,
    UpstreamTimeout,
)

log = logging.getLogger("sentry_jira.http")

# Most specific first: the first matching kind decides.
STATUS_OF: dict[type[ServiceError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Unavailable: 503,
    UpstreamRateLimited: 429,
    UpstreamTimeout: 504,
    UpstreamRefused: 502,
    SentryError: 502,  # also an UpstreamError: must not be told as a Jira failure
    UpstreamError: 502,
}

# S8: what a client is told about an upstream failure (never upstream HTML or text).
UPSTREAM_DETAIL = {
    UpstreamNotReady: (
        "Jira cannot be called for this site yet (its Forge app token has not arrived or its "
        "permissions are still propagating); retry later"
    ),
    UpstreamRateLimited: "Jira is rate limiting requests; retry later",
    UpstreamTimeout: "Jira did not answer in time",
    UpstreamRefused: (
        "Jira refused the app's credentials; reinstall the app or check its permissions"
    ),
}
GENERIC_UPSTREAM_DETAIL = "Something went wrong while communicating with Jira"
SENTRY_DETAIL = "Something went wrong while communicating with Sentry"
# Only these kinds tell the client when to come back (S8 429, W10 / §4.3 503).
RETRY_AFTER_KINDS = (Unavailable, UpstreamRateLimited)


def error_response(
    status: int, detail: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response({"detail": detail}, status_code=status, headers=headers)


def service_error(request: Request[Any, Any, Any], exc: ServiceError) -> Response[Any]:
    status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), 500)
    if status == 401:
        log_refusal(request, exc)
    headers = None
    if isinstance(exc, RETRY_AFTER_KINDS):
        headers = {"Retry-After": str(exc.retry_after)}
    return error_response(status, client_detail(exc), headers)


# §3: the event of a refused unauthenticated request, by the route's first segments. The
# lifecycle callbacks and /metrics write their own lines (lifecycle_refused, metrics_refused).
REFUSAL_EVENTS = (
    ("/extensions/jira/issue-updated", "webhook_refused"),
    ("/extensions/jira/webhook", "webhook_refused"),
    ("/extensions/jira/search", "search_refused"),
    ("/extensions/jira/forge", "forge_refused"),  # §8.2 Forge Remote routes (FIT refused)
    ("/api", "admin_refused"),
    ("/schema", "admin_refused"),
)


def log_refusal(request: Request[Any, Any, Any], exc: ServiceError) -> None:
    """One rate-limited warning line per refused request (adapters/logs.py `RefusalLog`):
    the route's template (never the path as sent, nor a header, token or body), the method,
    the client address and the core's reason."""
    scope = request.scope
    base = str(request.app.state.get("base_path") or "")
    template = str(scope.get("path_template") or "")
    handler: Any = scope.get("route_handler")
    if not template and handler is not None and handler.paths:  # a mount: its prefix
        template = base + min(handler.paths) + "/{…}"
    route = template[len(base):] if base and template.startswith(base) else template
    name = next((event for prefix, event in REFUSAL_EVENTS
                 if route == prefix or route.startswith(prefix + "/")), None)
    if name is None:
        return
    client = scope.get("client")
    refusals.refused(name, f"refused {scope.get('method', '')} {template}: {exc.detail}",
                     route=template, method=scope.get("method"), reason=exc.detail,
                     client=client[0] if client else None)


def client_detail(exc: ServiceError) -> str:
    """S8: upstream failures get fixed texts (never the upstream's body or our reason)."""
    if isinstance(exc, SentryError):
        return SENTRY_DETAIL
    if isinstance(exc, UpstreamError):
        kind = next((k for k in UPSTREAM_DETAIL if isinstance(exc, k)), None)
        return GENERIC_UPSTREAM_DETAIL if kind is None else UPSTREAM_DETAIL[kind]
    return exc.detail


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    detail = exc.detail if isinstance(exc.detail, str) else "request refused"
    if isinstance(exc, ValidationException):
        detail = "invalid request parameters"
    return error_response(exc.status_code, detail, exc.headers)


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log_unexpected(request, exc)
    return error_response(500, "internal error")


def log_unexpected(request: Request[Any, Any, Any], exc: Exception) -> None:
    # Log the type and the frames, never the request nor the exception's text: either may
    # quote request data or a token. The frames say where; the type says what.
    frames = "\n".join(f"  {frame.f_code.co_filename}:{line} in {frame.f_code.co_name}"
                       for frame, line in traceback.walk_tb(exc.__traceback__))
    log.error(
        "unhandled %s on %s %s\n%s",
        type(exc).__name__,
        request.method,
        request.scope["path"],
        frames,
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ServiceError: service_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
