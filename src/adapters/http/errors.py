"""The one place core errors become status codes; every error body is `{"detail": ...}`."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from core.errors import (
    BadRequest,
    NotFound,
    ServiceError,
    Unauthorized,
    Unavailable,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRefused,
    UpstreamTimeout,
)

log = logging.getLogger("sentry_jira.http")

# Most specific first: the first matching kind decides.
STATUS_OF: dict[type[ServiceError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    NotFound: 404,
    Unavailable: 503,
    UpstreamRateLimited: 429,
    UpstreamTimeout: 504,
    UpstreamRefused: 502,
    UpstreamError: 502,
}

# S8: what a client is told about an upstream failure (never upstream HTML or text).
UPSTREAM_DETAIL = {
    UpstreamRateLimited: "Jira is rate limiting requests; retry later",
    UpstreamTimeout: "Jira did not answer in time",
    UpstreamRefused: (
        "Jira refused the app's credentials; reinstall the app or check its permissions"
    ),
}
GENERIC_UPSTREAM_DETAIL = "Something went wrong while communicating with Jira"


def error_response(
    status: int, detail: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response({"detail": detail}, status_code=status, headers=headers)


def service_error(_: Request[Any, Any, Any], exc: ServiceError) -> Response[Any]:
    status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), 500)
    retry_after = getattr(exc, "retry_after", None)
    headers = None if retry_after is None else {"Retry-After": str(retry_after)}
    detail = exc.detail
    if isinstance(exc, UpstreamError):
        detail = UPSTREAM_DETAIL.get(type(exc), GENERIC_UPSTREAM_DETAIL)
    return error_response(status, detail, headers)


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    detail = exc.detail if isinstance(exc.detail, str) else "request refused"
    if isinstance(exc, ValidationException):
        detail = "invalid request parameters"
    return error_response(exc.status_code, detail, exc.headers)


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # Log the type and where, never the request (it may carry tokens).
    log.error(
        "unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        request.scope["path"],
        exc_info=exc,
    )
    return error_response(500, "internal error")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ServiceError: service_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
