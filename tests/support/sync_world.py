"""A sync world of in-memory fakes: a tenant, its Jira, Sentry orgs, bindings and links, and
the inbox + sync state the worker runs on. Plus builders of `jira:issue_updated` bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from adapters.memory.admin import (
    MemoryAccountMappingStore,
    MemoryAdminData,
    MemoryBindingStore,
    MemoryLinkStore,
)
from adapters.memory.clock import FixedClock
from adapters.memory.inbox import MemoryInbox
from adapters.memory.jira import MemoryJiraApi
from adapters.memory.sentry import MemorySentryApi
from adapters.memory.sync_store import MemorySyncStore
from adapters.memory.tenants import MemoryTenantStore
from adapters.outbound.jira_status_cache import CachingJiraApi, StatusCache
from core.issue_update.process import SyncPorts, process_delivery
from core.model.bindings import AccountMapping, Binding, Link, ResolutionStrategy, StatusRule
from core.model.jira import JiraStatus
from core.model.settings import AppSettings
from core.model.tenant import Installation, Tenant
from ports.inbox import ClaimedDelivery, NewDelivery

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SHARED_SECRET = "tenant-secret-for-the-sync-world-0123456789"
IN_PROGRESS, DONE, REOPENED = "3", "10101", "4"
PROJECT = "10000"


def status_item(from_id: str = IN_PROGRESS, to_id: str = DONE) -> dict[str, Any]:
    names = {IN_PROGRESS: "In Progress", DONE: "Done", REOPENED: "Reopened"}
    return {"field": "status", "fieldtype": "jira", "from": from_id,
            "fromString": names.get(from_id, from_id), "to": to_id,
            "toString": names.get(to_id, to_id)}


def assignee_item() -> dict[str, Any]:
    return {"field": "assignee", "fieldtype": "jira", "from": None, "to": "abc"}


def key_item(old: str, new: str) -> dict[str, Any]:
    return {"field": "Key", "fieldtype": "jira", "from": None, "fromString": old,
            "to": None, "toString": new}


def issue_updated(
    *items: dict[str, Any],
    issue_id: str = "20417",
    key: str = "APP-123",
    updated: str | None = "2025-11-28T09:00:00.000+0000",
    assignee: dict[str, Any] | None = None,
    project: str = PROJECT,
    changelog_id: str = "88231",
) -> dict[str, Any]:
    fields: dict[str, Any] = {"project": {"id": project, "key": "APP"}, "assignee": assignee}
    if updated is not None:
        fields["updated"] = updated
    return {
        "timestamp": 1764320400000,
        "webhookEvent": "jira:issue_updated",
        "issue": {"id": issue_id, "key": key, "fields": fields},
        "changelog": {"id": changelog_id, "items": list(items or [status_item()])},
    }


class SyncWorld:
    def __init__(self, *, max_attempts: int = 4, retry_base_seconds: float = 2.0,
                 use_email_scope: bool = False, clock: Any = None) -> None:
        self.clock = clock or FixedClock(T0)
        self.inbox = MemoryInbox()
        self.sync = MemorySyncStore(self.inbox)
        self.tenants = MemoryTenantStore()
        data = MemoryAdminData()
        self.bindings = MemoryBindingStore(data)
        self.links = MemoryLinkStore(data)
        self.accounts = MemoryAccountMappingStore(data)
        self.sentry = MemorySentryApi()
        self.jira = MemoryJiraApi()
        self.settings = AppSettings(
            base_url="https://sentry-jira.example.com", app_key="sentry-jira.example.com.jira",
            max_attempts=max_attempts, retry_base_seconds=retry_base_seconds,
            use_email_scope=use_email_scope)
        self.ports = SyncPorts(inbox=self.inbox, sync=self.sync, journal=self.sync,
                               tenants=self.tenants,
                               bindings=self.bindings, links=self.links, accounts=self.accounts,
                               sentry=self.sentry,
                               jira=CachingJiraApi(self.jira, StatusCache(self.clock)),
                               clock=self.clock)
        self._deliveries = 0

    async def a_tenant(self, client_key: str = "jira-client-1") -> Tenant:
        tenant = await self.tenants.upsert_installed(Installation(
            client_key=client_key, shared_secret=SHARED_SECRET,
            base_url="https://acme.atlassian.net", display_url=None, installed_at=T0))
        self.jira.site(tenant).statuses = [
            JiraStatus(IN_PROGRESS, "In Progress", "indeterminate"),
            JiraStatus(DONE, "Done", "done"),
            JiraStatus(REOPENED, "Reopened", "new"),
        ]
        return tenant

    async def bind(self, tenant: Tenant, org: str, *, issues: dict[str, list[str]] | None = None,
                   has_releases: bool = True, **settings: Any) -> Binding:
        token = f"sntrys_{org}_token_0123456789"
        self.sentry.add_org(org, token, has_releases=has_releases)
        status_map = settings.pop("status_map", {})
        binding = Binding(
            tenant_id=tenant.id, org=org, sentry_url="https://sentry.example.com",
            sentry_token=token,
            status_map={p: StatusRule(frozenset(r.get("resolve", ())),
                                      frozenset(r.get("unresolve", ())))
                        for p, r in status_map.items()},
            resolution_strategy=ResolutionStrategy(settings.pop("resolution_strategy",
                                                                "resolve")),
            **settings)
        await self.bindings.change(tenant.id, org, lambda _: binding)
        for key, ids in (issues or {}).items():
            for sentry_id in ids:
                self.sentry.add_issue(org, sentry_id)
            await self.links.replace(Link(tenant.id, org, key, tuple(ids)))
        return binding

    async def map_account(self, tenant: Tenant, org: str, account_id: str, user_id: str) -> None:
        await self.accounts.put(AccountMapping(tenant.id, org, account_id, user_id))

    async def deliver(self, tenant: Tenant, body: dict[str, Any], delivery_id: str | None = None
                      ) -> str:
        self._deliveries += 1
        delivery_id = delivery_id or f"delivery-{self._deliveries}"
        await self.inbox.record(NewDelivery(
            tenant_id=tenant.id, delivery_id=delivery_id, issue_id=body["issue"]["id"],
            issue_key=body["issue"]["key"], body=json.dumps(body).encode(),
            received_at=self.clock.now()))
        return delivery_id

    async def claim(self, owner: str = "w1") -> list[ClaimedDelivery]:
        return await self.inbox.claim(owner, now=self.clock.now(), lease_seconds=30, limit=50)

    async def run(self, owner: str = "w1", *, jitter: float = 0.5) -> int:
        """Process every due delivery once; returns how many were processed."""
        claimed = await self.claim(owner)
        for delivery in claimed:
            await process_delivery(delivery, owner=owner, ports=self.ports,
                                   settings=self.settings, jitter=lambda: jitter)
        return len(claimed)

    async def run_until_idle(self, *, step_seconds: float = 3600, rounds: int = 30) -> None:
        """Process, advance the clock past any backoff, and again, until nothing is pending."""
        for _ in range(rounds):
            await self.run()
            if (await self.inbox.stats(self.clock.now())).pending == 0:
                return
            self.clock.advance(step_seconds)
        raise AssertionError("deliveries still pending")

    async def journal(self, tenant: Tenant) -> list[tuple[str, str, str | None, str]]:
        """(kind, outcome, org, detail), oldest first."""
        entries = await self.sync.journal(tenant.id, limit=500)
        return [(e.kind.value, e.outcome.value, e.org, e.detail) for e in reversed(entries)]
