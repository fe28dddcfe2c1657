from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from adapters.http.app import create_app
from adapters.wiring import Container


@pytest.fixture
def client_for() -> Callable[[Container], Any]:
    """`async with client_for(container) as client:` — the app in-process."""

    def make(container: Container) -> AsyncTestClient[Litestar]:
        return AsyncTestClient(app=create_app(container), base_url="http://testserver.local")

    return make


@pytest.fixture
async def fake_client() -> AsyncIterator[AsyncTestClient[Litestar]]:
    from tests.support.builders import a_fake_container

    async with AsyncTestClient(app=create_app(a_fake_container())) as client:
        yield client


from tests.support.admin_api import api  # noqa: E402, F401 - the admin API fixture
