"""JSON shapes of the administration answers (§A), shared by the HTTP API and the CLI.

Nothing here ever carries a shared secret or a Sentry token: a binding shows `"***"`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.admin.bindings import IssuedSearchToken, TenantView
from core.admin.sites import RegisteredSite, webhook_url
from core.model.bindings import AccountMapping, Binding, Link, SearchToken
from core.model.tenant import FORGE, WEBHOOK, Tenant
from ports.journal import DeadLetter
from ports.sync_store import JournalEntry

MASK = "***"


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z` (naive times are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def tenant_json(view: TenantView) -> dict[str, Any]:
    """§A: `client_key` is null where the transport has none (a webhook site's row holds
    only a stand-in); `flavor` is shown for webhook sites."""
    tenant = view.tenant
    webhook = tenant.transport == WEBHOOK
    forge = tenant.transport == FORGE
    # A Forge site keeps the clientKey it had under Connect (Connect on Forge); one created
    # by Forge has only a stand-in, shown as null.
    client_key = None if webhook or (forge and tenant.client_key.startswith("forge-site:")) \
        else tenant.client_key
    shown: dict[str, Any] = {
        "id": tenant.id,
        "transport": tenant.transport,
        "client_key": client_key,
        "base_url": tenant.base_url,
        "display_url": tenant.display_url,
        "status": tenant.status.value,
        "installed_at": iso_utc(tenant.installed_at),
        "orgs": list(view.orgs),
    }
    if webhook:
        shown["flavor"] = tenant.flavor.value
    if forge:
        shown["installation_id"] = tenant.installation_id
    return shown


def site_json(site: Tenant, app_base_url: str) -> dict[str, Any]:
    """§8.1: a webhook site without any secret or credential."""
    return {
        "id": site.id,
        "transport": site.transport,
        "flavor": site.flavor.value,
        "base_url": site.base_url,
        "status": site.status.value,
        "webhook_url": webhook_url(app_base_url, site.id),
    }


def registered_site_json(registered: RegisteredSite, app_base_url: str) -> dict[str, Any]:
    """§8.1 201: `{id, transport, flavor, base_url, webhook_url, webhook_secret}`; the secret
    is shown this once."""
    site = registered.site
    return {
        "id": site.id,
        "transport": site.transport,
        "flavor": site.flavor.value,
        "base_url": site.base_url,
        "webhook_url": webhook_url(app_base_url, site.id),
        "webhook_secret": registered.webhook_secret,
    }


def binding_json(binding: Binding) -> dict[str, Any]:
    return {
        "tenant_id": binding.tenant_id,
        "org": binding.org,
        "sentry_url": binding.sentry_url,
        "sentry_token": MASK,
        "sync_status": binding.sync_status,
        "sync_assignee": binding.sync_assignee,
        "resolution_strategy": binding.resolution_strategy.value,
        "skip_archived": binding.skip_archived,
        "status_map": {
            project: {
                "resolve": sorted(rule.resolve, key=int),
                "unresolve": sorted(rule.unresolve, key=int),
            }
            for project, rule in sorted(binding.status_map.items(), key=lambda item: int(item[0]))
        },
    }


def link_json(link: Link) -> dict[str, Any]:
    return {"issue_key": link.issue_key, "sentry_issue_ids": list(link.sentry_issue_ids)}


def account_json(mapping: AccountMapping) -> dict[str, Any]:
    return {"account_id": mapping.account_id, "sentry_user_id": mapping.sentry_user_id}


def search_token_json(token: SearchToken) -> dict[str, Any]:
    return {"id": token.id, "created_at": iso_utc(token.created_at)}


def issued_search_token_json(issued: IssuedSearchToken) -> dict[str, Any]:
    return {"id": issued.search_token.id, "token": issued.token}


def journal_json(entry: JournalEntry) -> dict[str, Any]:
    return {
        "at": iso_utc(entry.at),
        "delivery": entry.delivery_id,
        "issue_key": entry.issue_key,
        "org": entry.org,
        "kind": entry.kind.value,
        "outcome": entry.outcome.value,
        "detail": entry.detail,
    }


def dead_letter_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "tenant_id": letter.tenant_id,
        "org": letter.org,
        "issue_key": letter.issue_key,
        "kind": letter.kind.value,
        "action": dict(letter.action),
        "attempts": letter.attempts,
        "last_error": letter.last_error,
        "created_at": iso_utc(letter.created_at),
    }
