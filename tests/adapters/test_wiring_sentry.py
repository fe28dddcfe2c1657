"""The composition root wires the Sentry port: httpx in production, the fake in tests."""

from __future__ import annotations

from pathlib import Path

from adapters.memory.sentry import MemorySentryApi
from adapters.outbound.sentry import HttpSentryApi
from adapters.wiring import bootstrap
from tests.support.builders import a_fake_container, a_settings


async def test_bootstrap_wires_the_http_sentry_api_and_shutdown_closes_its_client(
    tmp_path: Path,
) -> None:
    container = bootstrap(a_settings(tmp_path))
    try:
        assert isinstance(container.sentry, HttpSentryApi)
        client = container.http_client
        assert client is not None and not client.is_closed
        assert client.follow_redirects is False
        await container.shutdown()
        assert client.is_closed
    finally:
        container.close()


def test_a_fake_container_has_the_memory_sentry() -> None:
    assert isinstance(a_fake_container().sentry, MemorySentryApi)
