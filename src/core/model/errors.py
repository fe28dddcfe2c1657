"""Errors the use cases raise; the HTTP adapter maps each kind to one status code."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a use case reports; `detail` is safe to show a client."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(ServiceError):
    """The request is malformed or names something invalid (400)."""


class Unauthorized(ServiceError):
    """Authentication failed (401). The detail never names a secret."""


class Forbidden(ServiceError):
    """Authenticated, but not allowed to do this (403): a §10 page POST without a valid action
    token."""


class NotFound(ServiceError):
    """The named resource does not exist (404)."""


class Conflict(ServiceError):
    """The request collides with what is stored, e.g. a site's base URL taken (409)."""


class Unavailable(ServiceError):
    """A dependency (the database, the key server) cannot answer now (503)."""

    def __init__(self, detail: str, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class UpstreamError(ServiceError):
    """A call to Jira or Sentry failed; subclasses say how (S8, W9)."""


class UpstreamNotReady(Unavailable, UpstreamError):
    """§8.2: Jira cannot be called for this site yet — no unexpired Forge system token, or
    Jira answered 401/403 within 10 minutes of the install (permissions propagate). Search
    answers 503 with `Retry-After`; the worker retries it (W9) and journals why."""


class UpstreamRateLimited(UpstreamError):
    """The upstream answered 429 (S8: answered 429 with its `Retry-After`, 30 when absent)."""

    def __init__(self, detail: str, retry_after: int = 30) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer within the timeout (S8: 504)."""


class UpstreamRefused(UpstreamError):
    """The upstream refused the app's credentials, 401/403 (S8: 502 with its own text)."""


class UpstreamNotFound(UpstreamError):
    """The upstream answered 404 for the named resource."""


class UpstreamFailed(UpstreamError):
    """Any other upstream failure: 5xx, 410, HTML, invalid JSON, a refused host (S8: 502)."""

    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.status = status


class SentryError(UpstreamError):
    """A call to Sentry failed (W9). `detail` is a short safe reason: never the token, never
    Sentry's body. `transient` says whether a retry may succeed; `retry_after` is the delay in
    seconds Sentry asked for (429 `Retry-After`), when it gave one."""

    transient: bool = False

    def __init__(
        self, detail: str, *, status: int | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.retry_after = retry_after


class SentryUnavailable(SentryError):
    """Connection error, timeout, 5xx or 429: retried with backoff (W9)."""

    transient = True


class SentryRejected(SentryError):
    """Any other 4xx (or a redirect, or an unreadable answer): not retried, a dead letter (W9)."""


class SentryReleaseRefused(SentryRejected):
    """Sentry refused a release-based resolve with 400 (no release): fall back to a plain
    resolve and journal why (W5)."""
