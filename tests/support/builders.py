"""Builders: settings and containers with fakes, arranged like the rule under test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.config import Settings, load_settings
from adapters.memory.clock import FixedClock
from adapters.memory.install_keys import MemoryInstallKeys
from adapters.memory.jira import MemoryJiraApi
from adapters.memory.lifecycle import MemoryLifecycleStore
from adapters.memory.sentry import MemorySentryApi
from adapters.memory.tenants import MemoryTenantStore
from adapters.wiring import Container

TEST_FERNET_KEY = "x8mmEJqS4u-SOE9C7kFH0SV1nsfgAXl0fR8-Yt1ZK-8="
ADMIN_TOKEN = "admin-token-for-tests-0123456789"


def a_settings(tmp_path: Path | None = None, **env: str) -> Settings:
    """Settings as `serve` would load them from this environment (SENTRY_JIRA_ prefix added)."""
    environ = {
        "SENTRY_JIRA_BASE_URL": "https://sentry-jira.example.com",
        "SENTRY_JIRA_SECRET_KEY": TEST_FERNET_KEY,
    }
    if tmp_path is not None:
        environ["SENTRY_JIRA_DATABASE"] = str(tmp_path / "sentry-jira.db")
    environ.update({f"SENTRY_JIRA_{k.upper()}": v for k, v in env.items()})
    return load_settings(environ)


def a_fake_container(settings: Settings | None = None, **ports: Any) -> Container:
    """A container of in-memory fakes; pass ports by name to replace any of them."""
    values: dict[str, Any] = {
        "settings": settings or a_settings(),
        "tenants": MemoryTenantStore(),
        "clock": FixedClock(),
        "jira": MemoryJiraApi(),
        "sentry": MemorySentryApi(),
    }
    values.update(ports)
    if "lifecycle" not in ports and isinstance(values["tenants"], MemoryTenantStore):
        values["lifecycle"] = MemoryLifecycleStore(values["tenants"])
    values.setdefault("install_keys", MemoryInstallKeys())
    return Container(**values)
