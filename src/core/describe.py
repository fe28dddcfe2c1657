"""describe: the Atlassian Connect descriptor (D1, D2), built from settings alone."""

from __future__ import annotations

from typing import Any

from core.model.settings import AppSettings

INSTALLED_PATH = "/extensions/jira/installed/"
UNINSTALLED_PATH = "/extensions/jira/uninstalled/"
ISSUE_UPDATED_PATH = "/extensions/jira/issue-updated/"
# §8.1: the webhook transport's inbound route (not in the Connect descriptor).
WEBHOOK_PATH = "/extensions/jira/webhook/{site_id}/"


def describe(settings: AppSettings) -> dict[str, Any]:
    """D1: the descriptor; D2: `baseUrl` and `key` come from settings, never from a request."""
    scopes = ["read"]
    if settings.use_email_scope:
        scopes.append("access_email_addresses")
    return {
        "name": settings.app_name,
        "description": "Syncs Jira issue status and assignee changes to linked Sentry issues.",
        "key": settings.app_key,
        "baseUrl": settings.base_url,
        "vendor": {"name": settings.app_name, "url": settings.base_url},
        "authentication": {"type": "jwt"},
        "lifecycle": {"installed": INSTALLED_PATH, "uninstalled": UNINSTALLED_PATH},
        "apiVersion": 1,
        "apiMigrations": {"gdpr": True, "context-qsh": True, "signed-install": True},
        "scopes": scopes,
        "modules": {
            "webhooks": [
                {"event": "jira:issue_updated", "url": ISSUE_UPDATED_PATH, "excludeBody": False}
            ]
        },
    }
