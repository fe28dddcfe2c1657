"""§8.2 the Forge route's use case on fakes: every refused rule leaves the store untouched
(no site, no spent jti) and asks the key source at most once (its one egress); header
refusals (alg, kid shape) ask it nothing. An accepted call records the site once."""

from __future__ import annotations

from typing import Any

import pytest
from tests.support.forge import APP_ID, ForgeSigner, mint_fit, mint_system_token

from adapters.memory.clock import FixedClock
from adapters.memory.forge import MemoryForgeKeys, MemoryForgeSites
from adapters.memory.tenants import MemoryTenantStore
from core.forge.calls import record_forge_call, verify_forge_call
from core.forge.endpoints import FORGE_ENDPOINT_KEYS, FORGE_ROUTE_MODULE_KEYS
from core.model.errors import Unauthorized, Unavailable
from core.model.host_patterns import parse_host_patterns
from core.model.settings import AppSettings

API = "https://api.atlassian.com/ex/jira/0f2c7e4a-0000-4000-8000-00000000c10d"
MODULE = FORGE_ENDPOINT_KEYS["issue-updated"]
ROUTE_KEYS = FORGE_ROUTE_MODULE_KEYS["issue-updated"]
SETTINGS = AppSettings(base_url="https://sentry-jira.example.com", app_key="app",
                       forge_app_id=APP_ID, forge_api_hosts=parse_host_patterns(
                           "https://api.atlassian.com"))
SIGNER = ForgeSigner("calls-key")
OTHER = "ari:cloud:ecosystem::app/00000000-0000-4000-8000-000000000000"


class World:
    def __init__(self) -> None:
        self.keys = MemoryForgeKeys({SIGNER.kid: SIGNER.key.public_key()})
        self.tenants = MemoryTenantStore()
        self.sites = MemoryForgeSites(self.tenants)
        self.clock = FixedClock()

    async def call(self, token: str, *, system_token: str | None = None) -> Any:
        call = await verify_forge_call([f"Bearer {token}"], module_keys=ROUTE_KEYS,
                                       keys=self.keys, settings=SETTINGS, clock=self.clock)
        return await record_forge_call(call, [system_token] if system_token else [],
                                       uninstall=False, sites=self.sites, settings=SETTINGS,
                                       clock=self.clock)

    async def untouched(self) -> None:
        assert await self.tenants.list_all() == []
        assert self.sites._spent == {}


def fit(signer: ForgeSigner = SIGNER, **options: Any) -> str:
    options.setdefault("now", FixedClock().now().timestamp())
    return mint_fit(signer, module_key=options.pop("module_key", MODULE),
                    api_base_url=options.pop("api", API), **options)


@pytest.mark.parametrize("options", [
    {"module_key": "lifecycle-endpoint"},
    {"overrides": {"aud": OTHER}},
    {"overrides": {"app.id": OTHER}},
    {"overrides": {"iss": "other"}},
    {"environment": "DEVELOPMENT"},
    {"lifetime": 301},
    {"now": FixedClock().now().timestamp() - 3600},
    {"overrides": {"app.installationId": "ari:cloud:ecosystem::installation/1"}},
    {"api": "https://api.atlassian.com.evil.example/ex/jira/x"},
    {"drop": ("jti",)},
])
async def test_8_2_each_refused_rule_stores_nothing_and_asks_for_one_key_at_most(
        options: dict[str, Any]) -> None:
    world = World()
    with pytest.raises(Unauthorized):
        await world.call(fit(**options), system_token=mint_system_token(
            3600, now=world.clock.now().timestamp()))
    await world.untouched()
    assert world.keys.lookups <= 1


@pytest.mark.parametrize("token", [
    fit(headers={"kid": "../x"}),
    "eyJhbGciOiJIUzI1NiIsImtpZCI6ImNhbGxzLWtleSJ9." + fit().split(".", 1)[1],
])
async def test_8_2_header_refusals_ask_for_no_key(token: str) -> None:
    world = World()
    with pytest.raises(Unauthorized):
        await world.call(token)
    assert world.keys.lookups == 0
    await world.untouched()


async def test_8_2_unknown_kid_and_key_outage_store_nothing() -> None:
    world = World()
    with pytest.raises(Unauthorized):
        await world.call(fit(ForgeSigner("unpublished")))
    world.keys.unavailable = True
    with pytest.raises(Unavailable):
        await world.call(fit())
    await world.untouched()


async def test_8_2_an_accepted_call_records_the_site_and_spends_its_token() -> None:
    world = World()
    token = fit()
    site = await world.call(token)
    assert site is not None and site.tenant.installation_id is not None
    with pytest.raises(Unauthorized, match="used before"):
        await world.call(token)
    assert len(await world.tenants.list_all()) == 1
