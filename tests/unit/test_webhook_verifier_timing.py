"""§8.1: the webhook verifier does the same HMAC work whatever the site id names.

A 401 must not tell an attacker which site ids exist (or which site is in its rotation hour)
by how long it took: an unknown id, a Connect tenant's id, a site with one secret and a site
with two all cost exactly two HMACs over the body. Counted, not timed.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.memory.clock import FixedClock
from adapters.memory.tenants import MemoryTenantStore
from core.jira_webhooks import verify
from core.jira_webhooks.site import verify_webhook_site
from core.model.credentials import ApiToken, JiraFlavor
from core.model.errors import Unauthorized
from core.model.tenant import Installation, NewSite

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BODY = b'{"webhookEvent":"jira:issue_updated"}' * 100


def signature(secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), BODY, hashlib.sha256).hexdigest()


@pytest.fixture
def hmac_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = hmac.digest

    def counting(key: Any, msg: Any, digest: Any) -> bytes:
        calls.append(len(msg))
        return real(key, msg, digest)

    monkeypatch.setattr(verify.hmac, "digest", counting)
    return calls


async def sites() -> tuple[MemoryTenantStore, dict[str, int]]:
    store = MemoryTenantStore()
    one = await store.register_site(NewSite(
        base_url="https://one.atlassian.net", flavor=JiraFlavor.CLOUD,
        credential=ApiToken("a@example.com", "t1"), webhook_secret="s" * 43,
        registered_at=NOW))
    two = await store.register_site(NewSite(
        base_url="https://two.atlassian.net", flavor=JiraFlavor.CLOUD,
        credential=ApiToken("b@example.com", "t2"), webhook_secret="u" * 43,
        registered_at=NOW))
    await store.rotate_webhook_secret(two.id, "v" * 43, now=NOW)
    connect = await store.upsert_installed(Installation(
        client_key="ck", shared_secret="x" * 40, base_url="https://c.atlassian.net",
        display_url=None, installed_at=NOW))
    return store, {"one": one.id, "two": two.id, "connect": connect.id}


@pytest.mark.parametrize("which", ["unknown", "connect", "one", "two", "not-a-number"])
async def test_8_1_every_refusal_costs_two_hmacs_over_the_body(
    which: str, hmac_calls: list[int]
) -> None:
    store, ids = await sites()
    site_id = {"unknown": "987654", "not-a-number": "x1"}.get(which) or str(ids[which])
    with pytest.raises(Unauthorized) as refused:
        await verify_webhook_site(site_id, BODY, [signature("forged" * 8)], tenants=store,
                                  clock=FixedClock(NOW))
    assert refused.value.detail == verify.REFUSED
    assert hmac_calls == [len(BODY), len(BODY)]


async def test_8_1_an_accepted_delivery_costs_the_same_two_hmacs(hmac_calls: list[int]) -> None:
    store, ids = await sites()
    clock = FixedClock(NOW + timedelta(minutes=5))
    for site, secret in (("one", "s" * 43), ("two", "v" * 43), ("two", "u" * 43)):
        hmac_calls.clear()
        verified = await verify_webhook_site(str(ids[site]), BODY, [signature(secret)],
                                             tenants=store, clock=clock)
        assert verified.tenant.id == ids[site]
        assert hmac_calls == [len(BODY), len(BODY)]
