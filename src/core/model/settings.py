"""The settings the use cases read; the adapter builds them from the environment (SPEC §3.1)."""

from __future__ import annotations

import attrs

from core.model.host_patterns import HostPattern


@attrs.frozen
class AppSettings:
    """Values the core needs; no file paths, keys or server details."""

    base_url: str  # normalised: no trailing slash
    app_key: str
    app_name: str = "Sentry"
    jira_hosts: tuple[HostPattern, ...] = ()
    # §8.3 SENTRY_JIRA_SENTRY_HOSTS; () = unset: any public https host
    sentry_hosts: tuple[HostPattern, ...] = ()
    use_email_scope: bool = False
    jwt_leeway_seconds: int = 30
    retry_base_seconds: float = 2.0
    max_attempts: int = 12
    retention_days: int = 30
    # §8.2 Forge Remote: the app id (None: the Forge routes answer 404), the environment
    # type a FIT must name, and the host patterns its `app.apiBaseUrl` may have.
    forge_app_id: str | None = None
    forge_environment: str = "PRODUCTION"
    forge_api_hosts: tuple[HostPattern, ...] = ()

    # The path part of the base URL ("" when the app is served at the root): read by every
    # Connect request's qsh check, so worked out once (settings are frozen).
    base_path: str = attrs.field(init=False, eq=False, repr=False)

    @base_path.default
    def _base_path(self) -> str:
        rest = self.base_url.split("://", 1)[-1]
        slash = rest.find("/")
        return "" if slash < 0 else rest[slash:].rstrip("/")
