"""Pure parts of the Jira adapter: Retry-After (S8) and the status cache (W5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from adapters.memory.clock import FixedClock
from adapters.outbound.jira import retry_after_seconds
from adapters.outbound.jira_status_cache import StatusCache
from core.model.jira import JiraStatus
from core.model.tenant import Tenant, TenantStatus

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12", 12),
        (" 12 ", 12),
        (None, 30),
        ("", 30),
        ("0", 1),
        ("-5", 30),
        ("1.5", 30),
        ("999999999", 3600),
        ("later", 30),
        ("Sun, 01 Mar 2026 12:01:00 GMT", 60),
        ("Sun, 01 Mar 2026 11:00:00 GMT", 1),
        ("Sun, 08 Mar 2026 12:00:00 GMT", 3600),
        ("Sun, 01 Mar 2026 12:01:00", 30),  # no zone: not an HTTP date
    ],
)
def test_S8_retry_after_is_seconds_or_an_http_date_clamped(
    value: str | None, expected: int
) -> None:
    assert retry_after_seconds(value, NOW) == expected


def a_tenant(tenant_id: int = 1, version: int = 1) -> Tenant:
    return Tenant(
        id=tenant_id,
        client_key=f"client-{tenant_id}",
        base_url="https://acme.atlassian.net",
        display_url=None,
        status=TenantStatus.INSTALLED,
        installed_at=NOW,
        shared_secret="s" * 40,
        secret_version=version,
    )


DONE = [JiraStatus("3", "Done", "done")]


def test_W5_status_cache_misses_on_another_secret_version() -> None:
    cache = StatusCache(FixedClock(NOW))
    cache.put(a_tenant(version=1), DONE)
    assert cache.get(a_tenant(version=1)) == DONE
    assert cache.get(a_tenant(version=2)) is None
    assert cache.get(a_tenant(version=1)) is None  # the stale entry is gone


def test_W5_status_cache_expires_after_its_ttl() -> None:
    clock = FixedClock(NOW)
    cache = StatusCache(clock, ttl=timedelta(minutes=10))
    cache.put(a_tenant(), DONE)
    clock.advance(599)
    assert cache.get(a_tenant()) == DONE
    clock.advance(1)
    assert cache.get(a_tenant()) is None


def test_W5_status_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache = StatusCache(FixedClock(NOW), max_tenants=2)
    cache.put(a_tenant(1), DONE)
    cache.put(a_tenant(2), DONE)
    assert cache.get(a_tenant(1)) == DONE  # 1 is now the most recently used
    cache.put(a_tenant(3), DONE)
    assert len(cache) == 2
    assert cache.get(a_tenant(2)) is None
    assert cache.get(a_tenant(1)) == DONE
    assert cache.get(a_tenant(3)) == DONE


def test_W5_cached_statuses_cannot_be_changed_by_the_caller() -> None:
    cache = StatusCache(FixedClock(NOW))
    cache.put(a_tenant(), list(DONE))
    got = cache.get(a_tenant())
    assert got is not None
    got.clear()
    assert cache.get(a_tenant()) == DONE
    assert attrs.has(JiraStatus)
