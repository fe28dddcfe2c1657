# ruff: noqa: F811 - the fixtures imported from the W8 suite are parameters here
"""The §10 calls of the SentryApi port, one suite for the in-memory fake and for the httpx
adapter talking to the fake Sentry on loopback: the bind check (`GET .../organizations/{org}/`)
and the glance's issue read (`GET .../issues/{id}/`)."""

from __future__ import annotations

import pytest

from adapters.memory.sentry import CHECK_ORG, GET_ISSUE
from core.model.errors import SentryRejected, SentryUnavailable
from tests.contract.test_sentry_api import (  # noqa: F401 - the suite's fixtures
    FAILURES,
    ISSUE,
    ORG,
    TOKEN,
    HttpWorld,
    MemoryWorld,
    SentryWorld,
    http_client,
    world,
)
from tests.support.fake_sentry import Answer, FakeSentry


def add_titled_issue(world: SentryWorld, issue_id: str, title: str, short_id: str) -> None:
    if isinstance(world, MemoryWorld):
        world.fake.add_issue(ORG, issue_id, title=title, short_id=short_id, status="resolved")
    else:
        assert isinstance(world, HttpWorld)
        world.server.add_issue(ORG, issue_id, title=title, short_id=short_id, status="resolved")


def fail_next(world: SentryWorld, operation: str, path: str, failure: str) -> None:
    if isinstance(world, MemoryWorld):
        world.fake.fail(FAILURES[failure][1], operation=operation)
    else:
        assert isinstance(world, HttpWorld)
        world.server.script("GET", path, FAILURES[failure][0])


async def test_section10_check_organization_accepts_the_org_with_its_token(
    world: SentryWorld,
) -> None:
    await world.api.check_organization(world.binding())


@pytest.mark.parametrize(("org", "token", "status"), [
    (ORG, "sntrys_wrong-token", 401),
    ("nobody", TOKEN, 404),
])
async def test_section10_check_organization_refuses_a_wrong_token_or_unknown_org(
    world: SentryWorld, org: str, token: str, status: int
) -> None:
    with pytest.raises(SentryRejected) as refused:
        await world.api.check_organization(world.binding(org=org, token=token))
    assert refused.value.status == status and not refused.value.transient


async def test_section10_check_organization_reports_sentry_down_as_transient(
    world: SentryWorld,
) -> None:
    fail_next(world, CHECK_ORG, FakeSentry.org_path(ORG), "503")
    with pytest.raises(SentryUnavailable):
        await world.api.check_organization(world.binding())


async def test_section10_get_issue_reads_short_id_title_status_and_permalink(
    world: SentryWorld,
) -> None:
    add_titled_issue(world, "9001", "<script>alert(1)</script> in checkout", "ACME-7Q")
    issue = await world.api.get_issue(world.binding(), "9001")
    assert (issue.id, issue.short_id, issue.title, issue.status) == (
        "9001", "ACME-7Q", "<script>alert(1)</script> in checkout", "resolved")
    binding = world.binding()
    assert issue.permalink == f"{binding.sentry_url}/organizations/{ORG}/issues/9001/"


async def test_section10_get_issue_of_an_unknown_issue_or_with_a_wrong_token_is_refused(
    world: SentryWorld,
) -> None:
    with pytest.raises(SentryRejected) as unknown:
        await world.api.get_issue(world.binding(), "123456")
    assert unknown.value.status == 404
    with pytest.raises(SentryRejected) as refused:
        await world.api.get_issue(world.binding(token="sntrys_wrong"), ISSUE)
    assert refused.value.status == 401


async def test_section10_get_issue_failure_is_transient_when_sentry_is_down(
    world: SentryWorld,
) -> None:
    fail_next(world, GET_ISSUE, FakeSentry.issue_path(ORG, ISSUE), "503")
    with pytest.raises(SentryUnavailable):
        await world.api.get_issue(world.binding(), ISSUE)


async def test_section10_http_get_issue_without_a_title_is_refused(
    fake_sentry: FakeSentry, http_client: object
) -> None:
    """An answer that is not an issue (no title/status) is an error, never a blank row."""
    import httpx

    assert isinstance(http_client, httpx.AsyncClient)
    world = HttpWorld(fake_sentry, http_client)
    world.add_org(ORG, TOKEN)
    fake_sentry.script("GET", FakeSentry.issue_path(ORG, "77"), Answer(200, {"id": "77"}))
    with pytest.raises(SentryRejected):
        await world.api.get_issue(world.binding(), "77")
