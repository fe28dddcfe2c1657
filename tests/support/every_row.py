"""A database with a row in every registered table, written through the real stores of either
engine (SPEC §9 `db copy`): tenants (one uninstalled, one webhook site rotated), bindings,
links, mappings, a search token, a used lifecycle token, deliveries (one done, one dead
letter, one pending), plans and actions, watermarks, the journal, a worker heartbeat, and a
Forge site with its system token and a spent FIT id (§8.2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs

from adapters.wiring import AdminStores
from adapters.worker import WorkerUpkeep
from core.model.bindings import AccountMapping, Binding, Link
from core.model.credentials import ApiToken, JiraFlavor
from core.model.forge import ForgeCall, SystemToken, VerifiedForgeCall
from core.model.sync import Kind, Outcome, Watermark, WatermarkAdvance, WatermarkKey
from core.model.tenant import Installation, NewSite
from core.model.used_tokens import UsedToken
from ports.forge import ForgeSites
from ports.inbox import Inbox, NewDelivery
from ports.lifecycle import LifecycleStore
from ports.sync_store import ActionState, JournalEntry, NewAction, SyncStore
from ports.tenants import TenantStore

AT = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
SHARED_SECRET = "every-row-shared-secret-0123456789abcdef0123"
WEBHOOK_SECRETS = ("every-row-webhook-first-0123456789abcdef", "every-row-webhook-second-012345")
JIRA_TOKEN = "every-row-jira-token-0123456789"
SENTRY_TOKEN = "sntrys_every-row-token-0123456789abcdef"
SEARCH_TOKEN = "every-row-search-token-0123456789abcdef"
FORGE_SYSTEM_TOKEN = "every-row-forge-system-token-0123456789"
FORGE_INSTALLATION_ID = "ari:cloud:ecosystem::installation/0e3a8c1e-every-row"


@attrs.frozen
class AllStores:
    tenants: TenantStore
    lifecycle: LifecycleStore
    admin: AdminStores
    inbox: Inbox
    sync: SyncStore
    upkeep: WorkerUpkeep
    forge: ForgeSites


def an_entry(tenant_id: int, delivery_id: str, outcome: Outcome) -> JournalEntry:
    return JournalEntry(at=AT, tenant_id=tenant_id, delivery_id=delivery_id, issue_key="APP-1",
                        org="acme", kind=Kind.STATUS, outcome=outcome, detail="why")


async def populate(stores: AllStores) -> dict[str, int]:
    """Write a row into every table; the ids of what was made."""
    result = await stores.lifecycle.record_install(
        Installation(client_key="acme-client", shared_secret=SHARED_SECRET,
                     base_url="https://acme.atlassian.net", display_url=None, installed_at=AT),
        UsedToken(token_hash="t" * 64, body_hash="b" * 64, forget_after=AT + timedelta(days=1)),
        now=AT)
    assert result.tenant is not None
    acme = result.tenant.id
    gone = await stores.tenants.register_site(NewSite(
        base_url="https://gone.atlassian.net", flavor=JiraFlavor.CLOUD,
        credential=ApiToken("bot@gone.example", JIRA_TOKEN), webhook_secret="gone-" * 8,
        registered_at=AT))
    await stores.tenants.remove_site(gone.id)
    hooks = await stores.tenants.register_site(NewSite(
        base_url="https://hooks.atlassian.net", flavor=JiraFlavor.CLOUD,
        credential=ApiToken("bot@hooks.example", JIRA_TOKEN), webhook_secret=WEBHOOK_SECRETS[0],
        registered_at=AT))
    await stores.tenants.rotate_webhook_secret(hooks.id, WEBHOOK_SECRETS[1], now=AT)
    binding = Binding(tenant_id=acme, org="acme", sentry_url="https://sentry.io",
                      sentry_token=SENTRY_TOKEN)
    await stores.admin.bindings.change(acme, "acme", lambda _: binding)
    await stores.admin.links.replace(Link(acme, "acme", "APP-1", ("101", "102")))
    await stores.admin.accounts.put(AccountMapping(acme, "acme", "acct-1", "7"))
    await stores.admin.search_tokens.create("acme", SEARCH_TOKEN, AT)

    # Three deliveries of three issues: one finished, one a dead letter, one pending.
    for n in range(3):
        await stores.inbox.record(NewDelivery(
            tenant_id=acme, delivery_id=f"d-{n}", issue_id=f"2041{n}", issue_key="APP-1",
            body=b'{"binary": "\\u00e9\\u0000"}' + bytes([n, 255]), received_at=AT))
    claimed = await stores.inbox.claim("w1", now=AT, lease_seconds=30, limit=2)
    assert len(claimed) == 2
    key = WatermarkKey(acme, claimed[0].issue_id, "acme", Kind.STATUS)
    for index, delivery in enumerate(claimed):
        [action] = await stores.sync.save_plan(
            delivery, actions=[NewAction(Kind.STATUS, "acme", {"org": "acme",
                                                                  "payload": {"status": "x"}})],
            entries=[], advances=[], at=AT)
        if index == 0:
            await stores.sync.finish(
                action.id, state=ActionState.DONE,
                entry=an_entry(acme, delivery.delivery_id, Outcome.APPLIED),
                advance=WatermarkAdvance(key, Watermark(AT, delivery.delivery_id)))
        else:
            await stores.sync.bury(action.id, entry=an_entry(acme, delivery.delivery_id,
                                                             Outcome.DEAD),
                                   error="Sentry answered 403", at=AT)
        await stores.sync.settle(delivery.id, "w1")
    await stores.upkeep.beat("w1", AT)
    forge = await stores.forge.record_call(ForgeCall(
        call=VerifiedForgeCall(installation_id=FORGE_INSTALLATION_ID,
                               api_base_url="https://api.atlassian.com/ex/jira/every-row",
                               module_key="lifecycle-endpoint", environment="PRODUCTION",
                               jti="every-row-jti", expires_at=AT + timedelta(minutes=1)),
        remember_jti_until=AT + timedelta(days=1),
        system_token=SystemToken(FORGE_SYSTEM_TOKEN, AT + timedelta(hours=1))), now=AT)
    assert forge.tenant is not None
    return {"acme": acme, "hooks": hooks.id, "forge": forge.tenant.id}
