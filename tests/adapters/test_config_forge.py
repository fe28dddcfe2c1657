"""§3.1, §8.2: the Forge variables — defaults, and each bad value stops start-up naming it."""

from __future__ import annotations

import pytest

from adapters.config import (
    DEFAULT_FORGE_JWKS_URL,
    PREFIX,
    ConfigError,
    load_settings,
)
from tests.support.forge import APP_ID


def test_8_2_defaults_serve_no_forge_route_and_trust_atlassian_only() -> None:
    loaded = load_settings({})
    assert loaded.app.forge_app_id is None
    assert loaded.app.forge_environment == "PRODUCTION"
    assert [str(p) for p in loaded.app.forge_api_hosts] == ["https://api.atlassian.com"]
    assert loaded.forge_jwks_url == DEFAULT_FORGE_JWKS_URL
    assert DEFAULT_FORGE_JWKS_URL.startswith("https://")


def test_8_2_values_are_read() -> None:
    loaded = load_settings({PREFIX + "FORGE_APP_ID": APP_ID,
                            PREFIX + "FORGE_ENVIRONMENT": "staging",
                            PREFIX + "FORGE_API_HOSTS": "https://api.atlassian.com,https://*.example.com",
                            PREFIX + "FORGE_JWKS_URL": "http://127.0.0.1:8999/jwks.json"})
    assert loaded.app.forge_app_id == APP_ID
    assert loaded.app.forge_environment == "STAGING"
    assert len(loaded.app.forge_api_hosts) == 2
    assert loaded.forge_jwks_url == "http://127.0.0.1:8999/jwks.json"


@pytest.mark.parametrize(("name", "value"), [
    ("FORGE_APP_ID", "my-app"),
    ("FORGE_APP_ID", "ari:cloud:ecosystem::installation/2f4e6a8c-1b3d-4f5a-8c7e-9d0b1a2c3e4f"),
    ("FORGE_APP_ID", APP_ID.upper()),
    ("FORGE_ENVIRONMENT", "prod uction"),
    ("FORGE_API_HOSTS", "ftp://api.atlassian.com"),
    ("FORGE_JWKS_URL", "http://forge.cdn.prod.atlassian-dev.net/.well-known/jwks.json"),
    ("FORGE_JWKS_URL", "http://localhost:8000/jwks.json"),
    ("FORGE_JWKS_URL", "https://user:pw@example.com/jwks.json"),
    ("FORGE_JWKS_URL", "not a url"),
])
def test_8_2_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({PREFIX + name: value})
    assert refused.value.variable == PREFIX + name
