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


class NotFound(ServiceError):
    """The named resource does not exist (404)."""


class Unavailable(ServiceError):
    """A dependency (the database, the key server) cannot answer now (503)."""

    def __init__(self, detail: str, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
