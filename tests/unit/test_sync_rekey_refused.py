"""W7 (#11 item 11a): a re-key to something that is not a Jira issue key is journalled
`ignored` (kind `key`, with a reason) and the links stay where they are."""

from __future__ import annotations

import pytest
from tests.support.sync_world import SyncWorld, issue_updated, key_item, status_item

NOT_ISSUE_KEYS = [
    "ops-7",
    "OPS7",
    "OPS-",
    "-7",
    "7-OPS",
    "OPS-7 ",
    " OPS-7",
    "OPS-7\n",
    "OPS-7a",
    "OPS-+7",
    "<b>OPS</b>-7",
    "ÖPS-7",
    "OPS-７",  # a full-width digit: \d without re.ASCII would take it
    "O" * 300 + "-7",
]


def updates(world: SyncWorld) -> list[tuple[str, str, dict[str, object]]]:
    return [(c.org, c.target, c.payload or {}) for c in world.sentry.updates(None)]


@pytest.mark.parametrize("new_key", NOT_ISSUE_KEYS)
async def test_W7_a_rekey_to_an_invalid_key_is_ignored_and_the_link_stays(new_key: str) -> None:
    world = SyncWorld()
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"OLD-1": ["1"]})
    await world.bind(tenant, "beta", issues={"OLD-1": ["2"]})
    await world.deliver(tenant, issue_updated(key_item("OLD-1", new_key), key="OLD-1"))
    await world.run()

    for org, sentry_id in (("acme", "1"), ("beta", "2")):
        kept = await world.links.get(tenant.id, org, "OLD-1")
        assert kept is not None and kept.sentry_issue_ids == (sentry_id,)
    [(kind, outcome, org, detail)] = await world.journal(tenant)
    assert (kind, outcome, org) == ("key", "ignored", None)
    assert "not a valid Jira issue key" in detail and "OLD-1" in detail
    assert new_key.strip() not in detail or new_key.strip() == ""  # never echoed


async def test_W7_an_ignored_rekey_does_not_stop_the_status_sync_of_the_kept_link() -> None:
    world = SyncWorld()
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"OLD-1": ["1"]})
    body = issue_updated(key_item("OLD-1", "old-1"), status_item(), key="OLD-1")
    await world.deliver(tenant, body)
    await world.run()

    assert await world.links.get(tenant.id, "acme", "OLD-1") is not None
    assert updates(world) == [("acme", "1", {"status": "resolved"})]
    journal = await world.journal(tenant)
    assert ("key", "ignored") in [(kind, outcome) for kind, outcome, _, _ in journal]
    assert ("status", "applied") in [(kind, outcome) for kind, outcome, _, _ in journal]


async def test_W7_a_valid_rekey_next_to_an_invalid_one_still_applies() -> None:
    world = SyncWorld()
    tenant = await world.a_tenant()
    await world.bind(tenant, "acme", issues={"OLD-1": ["1"], "OLD-2": ["2"]})
    body = issue_updated(key_item("OLD-1", "NEW_1-10"), key_item("OLD-2", "new-2"), key="NEW_1-10")
    await world.deliver(tenant, body)
    await world.run()

    assert await world.links.get(tenant.id, "acme", "NEW_1-10") is not None
    assert await world.links.get(tenant.id, "acme", "OLD-2") is not None
    outcomes = sorted((kind, outcome) for kind, outcome, _, _ in await world.journal(tenant))
    assert outcomes == [("key", "applied"), ("key", "ignored")]
