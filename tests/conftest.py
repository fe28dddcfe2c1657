from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_sentry import FakeSentry


@pytest.fixture
def fake_sentry() -> Iterator[FakeSentry]:
    """A fake Sentry web API on 127.0.0.1 (W8), stopped after the test."""
    with FakeSentry() as server:
        yield server
