"""The one place core errors become status codes; every error body is `{"detail": ...}`."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from core.errors import BadRequest, NotFound, ServiceError, Unauthorized, Unavailable

log = logging.getLogger("sentry_jira.http")

STATUS_OF: dict[type[ServiceError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    NotFound: 404,
    Unavailable: 503,
}


def error_response(
    status: int, detail: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response({"detail": detail}, status_code=status, headers=headers)


def service_error(_: Request[Any, Any, Any], exc: ServiceError) -> Response[Any]:
    status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), 500)
    headers = None
    if isinstance(exc, Unavailable):
        headers = {"Retry-After": str(exc.retry_after)}
    retry_after = getattr(exc, "retry_after", None)
    if headers is None and retry_after is not None:
        headers = {"Retry-After": str(retry_after)}
    status = getattr(exc, "status_code", status)
    return error_response(status, exc.detail, headers)


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
