"""§8.2 issue-updated mapping (event → W2 body, watermark, delivery id) and the site decision
of a verified call (created, reactivated, switched from Connect, newer token, uninstalled)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from tests.support.forge import INSTALLATION_ID
from tests.support.paths import fixture_json

from core.forge.events import jira_time_of_millis, read_forge_event
from core.forge.sites import NEW_SITE_ID, forge_site_after
from core.issue_update.delivery import read_issue_update
from core.model.errors import BadRequest
from core.model.forge import ForgeCall, SystemToken, VerifiedForgeCall
from core.model.tenant import CONNECT, FORGE, WEBHOOK, Tenant, TenantStatus

NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
OTHER_INSTALLATION = "ari:cloud:ecosystem::installation/00000000-0000-4000-8000-0000000000aa"


def event() -> dict[str, Any]:
    return copy.deepcopy(fixture_json("forge-issue-updated-event.json"))


def test_8_2_the_recorded_forge_event_maps_onto_a_relevant_w2_delivery() -> None:
    mapped = read_forge_event(event(), installation_id=INSTALLATION_ID)
    assert mapped.body is not None and mapped.body["webhookEvent"] == "jira:issue_updated"
    incoming = read_issue_update(mapped.body, mapped.delivery_id)
    assert incoming is not None
    assert (incoming.id, incoming.issue_id, incoming.issue_key) == \
        (mapped.delivery_id, "10042", "APP-123")
    assert incoming.record["issue"]["fields"]["updated"] == "2026-12-04T10:40:00.123+0000"
    assert incoming.record["changelog"]["items"][0]["toString"] == "Done"


def test_8_2_the_event_may_sit_under_payload() -> None:
    top = read_forge_event(event(), installation_id=INSTALLATION_ID)
    nested = read_forge_event({"payload": event(), "context": {}},
                              installation_id=INSTALLATION_ID)
    assert nested == top


def test_8_2_self_generated_events_are_ignored() -> None:
    body = event()
    body["selfGenerated"] = True
    assert read_forge_event(body, installation_id=INSTALLATION_ID).body is None


def test_8_2_another_event_type_is_ignored_by_w2() -> None:
    body = event()
    body["eventType"] = "avi:jira:created:issue"
    mapped = read_forge_event(body, installation_id=INSTALLATION_ID)
    assert mapped.body is not None and read_issue_update(mapped.body, mapped.delivery_id) is None


@pytest.mark.parametrize("body", [[], "x", {}, {"eventType": 7}, {"payload": {"eventType": ""}}])
def test_8_2_a_body_without_an_event_type_is_400(body: Any) -> None:
    with pytest.raises(BadRequest):
        read_forge_event(body, installation_id=INSTALLATION_ID)


def test_8_2_w6_watermark_falls_back_to_the_event_timestamp() -> None:
    body = event()
    del body["issue"]["fields"]["updated"]
    mapped = read_forge_event(body, installation_id=INSTALLATION_ID)
    assert mapped.body is not None
    assert mapped.body["issue"]["fields"]["updated"] == "2025-12-04T10:40:00.123+0000"
    assert "updated" not in body["issue"]["fields"]  # the input is not changed
    assert jira_time_of_millis(True) is None and jira_time_of_millis(12) is None


def test_8_2_delivery_id_is_stable_across_retries_and_differs_per_installation_and_change() -> None:
    first = read_forge_event(event(), installation_id=INSTALLATION_ID).delivery_id
    assert read_forge_event(event(), installation_id=INSTALLATION_ID).delivery_id == first
    assert read_forge_event(event(), installation_id=OTHER_INSTALLATION).delivery_id != first
    changed = event()
    changed["changelog"]["id"] = "10568"
    assert read_forge_event(changed, installation_id=INSTALLATION_ID).delivery_id != first
    later = event()
    later["timestamp"] += 1
    assert read_forge_event(later, installation_id=INSTALLATION_ID).delivery_id != first


# -- the site a verified call makes -----------------------------------------------------


def a_call(*, uninstall: bool = False, token: SystemToken | None = None,
           api: str = "https://api.atlassian.com/ex/jira/c1") -> ForgeCall:
    verified = VerifiedForgeCall(installation_id=INSTALLATION_ID, api_base_url=api,
                                 module_key="lifecycle-endpoint", environment="PRODUCTION",
                                 jti="j", expires_at=NOW + timedelta(minutes=1))
    return ForgeCall(call=verified, remember_jti_until=NOW + timedelta(minutes=7),
                     system_token=token, uninstall=uninstall)


def a_site(**changes: Any) -> Tenant:
    site = Tenant(id=7, client_key="connect-client", base_url="https://acme.atlassian.net",
                  display_url="https://jira.acme.com", status=TenantStatus.INSTALLED,
                  installed_at=NOW - timedelta(days=3), shared_secret="s" * 32,
                  transport=CONNECT, installation_id=INSTALLATION_ID)
    return attrs.evolve(site, **changes)


def test_8_2_an_unknown_installation_becomes_a_new_forge_site() -> None:
    site = forge_site_after(None, a_call(), now=NOW)
    assert site is not None and site.id == NEW_SITE_ID
    assert (site.transport, site.status, site.installed_at) == (FORGE, TenantStatus.INSTALLED, NOW)
    assert site.base_url == "https://api.atlassian.com/ex/jira/c1"
    assert forge_site_after(None, a_call(uninstall=True), now=NOW) is None


def test_8_2_a_connect_site_carrying_the_id_switches_keeping_its_id() -> None:
    site = forge_site_after(a_site(), a_call(), now=NOW)
    assert site is not None and (site.id, site.client_key, site.transport) == \
        (7, "connect-client", FORGE)
    assert site.shared_secret is None and site.installed_at == NOW
    assert site.display_url == "https://jira.acme.com"


def test_8_2_an_uninstalled_site_is_reactivated_and_a_newer_token_kept() -> None:
    old = SystemToken("old", NOW + timedelta(minutes=30))
    gone = a_site(transport=FORGE, status=TenantStatus.UNINSTALLED, shared_secret=None)
    site = forge_site_after(gone, a_call(token=old), now=NOW)
    assert site is not None and site.status is TenantStatus.INSTALLED and site.system_token == old
    older = SystemToken("older", NOW + timedelta(minutes=10))
    assert forge_site_after(site, a_call(token=older), now=NOW) == site  # not newer: kept
    newer = SystemToken("newer", NOW + timedelta(hours=1))
    after = forge_site_after(site, a_call(token=newer), now=NOW)
    assert after is not None and after.system_token == newer


def test_8_2_pre_uninstall_marks_uninstalled_and_erases_the_token() -> None:
    site = a_site(transport=FORGE, shared_secret=None,
                  system_token=SystemToken("t", NOW + timedelta(hours=1)))
    after = forge_site_after(site, a_call(uninstall=True), now=NOW)
    assert after is not None and after.status is TenantStatus.UNINSTALLED
    assert after.system_token is None


def test_8_2_a_webhook_site_is_never_taken_over() -> None:
    site = a_site(transport=WEBHOOK)
    assert forge_site_after(site, a_call(), now=NOW) is site
