"""S8: the error map turns each upstream failure kind into its status, header and fixed text;
Sentry failures (also `UpstreamError`s) are never told as Jira failures."""

from __future__ import annotations

import json

import pytest

from adapters.http.errors import service_error
from core.model.errors import (
    NotFound,
    SentryRejected,
    SentryUnavailable,
    ServiceError,
    Unavailable,
    UpstreamFailed,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRefused,
    UpstreamTimeout,
)

REFUSED = "Jira refused the app's credentials; reinstall the app or check its permissions"
GENERIC = "Something went wrong while communicating with Jira"
SENTRY = "Something went wrong while communicating with Sentry"
REASON = "internal reason with status 418 and a body excerpt"


class RefusedAfterRotation(UpstreamRefused):
    """A finer kind of refusal: still the S8 refusal text."""


@pytest.mark.parametrize(
    ("error", "status", "detail", "retry_after"),
    [
        (UpstreamRateLimited(REASON, retry_after=12), 429, None, "12"),
        (UpstreamRateLimited(REASON), 429, None, "30"),
        (UpstreamTimeout(REASON), 504, None, None),
        (UpstreamRefused(REASON), 502, REFUSED, None),
        (RefusedAfterRotation(REASON), 502, REFUSED, None),
        (UpstreamFailed(REASON, status=410), 502, GENERIC, None),
        (UpstreamFailed(REASON), 502, GENERIC, None),
        (UpstreamNotFound(REASON), 502, GENERIC, None),
        (SentryUnavailable(REASON, status=429, retry_after=7), 502, SENTRY, None),
        (SentryRejected(REASON, status=403), 502, SENTRY, None),
        (Unavailable("the database does not answer", retry_after=5), 503, None, "5"),
        (NotFound("no such tenant for this org"), 404, "no such tenant for this org", None),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, ServiceError) else None,
)
def test_S8_each_error_kind_has_its_status_header_and_text(
    error: ServiceError, status: int, detail: str | None, retry_after: str | None
) -> None:
    response = service_error(None, error)  # type: ignore[arg-type]  # the request is unused
    assert response.status_code == status
    assert (response.headers.get("Retry-After")) == retry_after
    body = json.loads(response.render(response.content, "application/json"))
    assert set(body) == {"detail"}
    if detail is not None:
        assert body["detail"] == detail
    assert REASON not in body["detail"]
    assert status != 500
