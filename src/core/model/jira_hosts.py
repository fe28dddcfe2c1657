"""L2: the check of a tenant `baseUrl` against SENTRY_JIRA_JIRA_HOSTS.

The host-pattern grammar and matcher live in `core.model.host_patterns` (one rule for every
outbound target); the names are re-exported here for the modules that import them.
"""

from __future__ import annotations

from core.model.errors import BadRequest
from core.model.host_patterns import HostPattern, HostRefused, check_origin, parse_host_patterns

__all__ = ["HostPattern", "check_jira_base_url", "parse_host_patterns"]


def check_jira_base_url(url: str, patterns: tuple[HostPattern, ...]) -> str:
    """L2: return the normalised base URL (`scheme://host[:port]`) or raise BadRequest."""
    try:
        origin = check_origin(url, patterns)
    except HostRefused:
        raise BadRequest("baseUrl is not an allowed Jira site") from None
    if origin.path not in ("", "/"):
        raise BadRequest("baseUrl is not an allowed Jira site")
    return str(origin)
