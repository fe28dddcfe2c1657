"""Key retirement (issue 11, item 4; §A `secrets reencrypt`, SPEC §3.1 rotation, §9 registry).

A database populated through the real stores under an old key is re-encrypted with
`new,old`; afterwards `new` alone reads everything and `old` alone is refused. The registry
of encrypted columns is held to the truth by scanning a populated database.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from adapters.cli.main import main
from adapters.config import ConfigError
from adapters.crypto import SecretBoxError
from adapters.sqlite import reencrypt as reencrypt_module
from adapters.sqlite.database import Database
from adapters.sqlite.forge import SqliteForgeSites
from adapters.sqlite.reencrypt import UnreadableValueError, reencrypt_all
from adapters.sqlite.schema import ENCRYPTED_COLUMNS
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.wiring import open_database, sqlite_admin_stores
from core.model.bindings import AccountMapping, Binding, Link
from core.model.credentials import ApiToken, JiraFlavor
from core.model.forge import ForgeCall, SystemToken, VerifiedForgeCall
from core.model.tenant import Installation, NewSite
from tests.support.builders import a_settings
from tests.support.encrypted_columns import (
    KEY_CHECK,
    columns_declared_encrypted,
    columns_holding_fernet_tokens,
)

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()
AT = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
SECRETS = {"acme": "acme-shared-secret-0123456789abcdef0123456789",
           "globex": "globex-shared-secret-0123456789abcdef01234567"}
# A webhook site (#13, §8.1), rotated once: current and previous secrets and an API token.
WEBHOOK_SECRETS = ("webhook-secret-first-0123456789abcdef0123",
                   "webhook-secret-second-0123456789abcdef01")
JIRA_TOKEN = "jira-api-token-0123456789abcdef"
FORGE_TOKEN = "forge.system-token.0123456789abcdef"
SENTRY_TOKENS = {"acme": "sntrys_acme-token-0123456789abcdef",
                 "beta": "sntrys_beta-token-0123456789abcdef",
                 "globex": "sntrys_globex-token-0123456789abcdef"}


def open_with(tmp_path: Path, keys: str) -> Database:
    return open_database(a_settings(tmp_path, secret_key=keys))


def always(binding: Binding) -> Callable[[Binding | None], Binding]:
    return lambda _current: binding


async def populate(database: Database) -> dict[str, int]:
    """Tenants (one uninstalled: its secret gone), bindings, links, mappings, search tokens."""
    tenants = SqliteTenantStore(database)
    stores = sqlite_admin_stores(database)
    ids: dict[str, int] = {}
    for name in ("acme", "globex", "gone"):
        tenant = await tenants.upsert_installed(Installation(
            client_key=f"{name}-client", shared_secret=SECRETS.get(name, "gone-secret-" * 4),
            base_url=f"https://{name}.atlassian.net", display_url=None, installed_at=AT))
        ids[name] = tenant.id
    await tenants.mark_uninstalled("gone-client")
    hooks = await tenants.register_site(NewSite(
        base_url="https://hooks.atlassian.net", flavor=JiraFlavor.CLOUD,
        credential=ApiToken("bot@hooks.example", JIRA_TOKEN), webhook_secret=WEBHOOK_SECRETS[0],
        registered_at=AT))
    await tenants.rotate_webhook_secret(hooks.id, WEBHOOK_SECRETS[1], now=AT)
    ids["hooks"] = hooks.id
    # §8.2: a Forge site's app system token is encrypted too.
    call = VerifiedForgeCall(
        installation_id="ari:cloud:ecosystem::installation/00000000-0000-4000-8000-000000000001",
        api_base_url="https://api.atlassian.com/ex/jira/c1", module_key="lifecycle-endpoint",
        environment="PRODUCTION", jti="jti-1", expires_at=AT + timedelta(minutes=5))
    forge = await SqliteForgeSites(database).record_call(ForgeCall(
        call=call, remember_jti_until=AT + timedelta(minutes=10),
        system_token=SystemToken(FORGE_TOKEN, AT + timedelta(hours=1))), now=AT)
    assert forge.tenant is not None
    ids["forge"] = forge.tenant.id
    for site, org in (("acme", "acme"), ("acme", "beta"), ("globex", "globex")):
        binding = Binding(tenant_id=ids[site], org=org, sentry_url="https://sentry.io",
                          sentry_token=SENTRY_TOKENS[org])
        await stores.bindings.change(ids[site], org, always(binding))
    await stores.links.replace(Link(ids["acme"], "acme", "APP-1", ("101", "102")))
    await stores.accounts.put(AccountMapping(ids["acme"], "acme", "acct-1", "7"))
    await stores.search_tokens.create("acme", "search-token-0123456789abcdef", AT)
    return ids


def populated(tmp_path: Path) -> dict[str, int]:
    database = open_with(tmp_path, OLD)
    try:
        return asyncio.run(populate(database))
    finally:
        database.close()


def ciphertexts(path: Path) -> dict[str, list[str]]:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        values = {f"{t}.{c}": sorted(r[0] for r in conn.execute(
            f"SELECT {c} FROM {t} WHERE {c} IS NOT NULL")) for t, c in ENCRYPTED_COLUMNS}
        values["meta.key_check"] = [conn.execute(
            "SELECT value FROM meta WHERE key = 'key_check'").fetchone()[0]]
        return values
    finally:
        conn.close()


async def everything_readable(database: Database, ids: dict[str, int]) -> None:
    tenants = SqliteTenantStore(database)
    bindings = sqlite_admin_stores(database).bindings
    for name in ("acme", "globex"):
        tenant = await tenants.get(ids[name])
        assert tenant is not None and tenant.shared_secret == SECRETS[name]
    gone = await tenants.get(ids["gone"])
    assert gone is not None and gone.shared_secret is None
    hooks = await tenants.get(ids["hooks"])
    assert hooks is not None and hooks.webhook_secrets is not None
    assert (hooks.webhook_secrets.current, hooks.webhook_secrets.previous) == WEBHOOK_SECRETS[::-1]
    assert hooks.site_credential == ApiToken("bot@hooks.example", JIRA_TOKEN)
    forge = await tenants.get(ids["forge"])
    assert forge is not None and forge.system_token is not None
    assert forge.system_token.token == FORGE_TOKEN
    stored = {b.org: b.sentry_token for n in ("acme", "globex")
              for b in await bindings.of_tenant(ids[n])}
    assert stored == SENTRY_TOKENS


# -- the rotation ---------------------------------------------------------------------------


def test_A_reencrypt_with_new_old_then_new_alone_reads_everything(tmp_path: Path) -> None:
    ids = populated(tmp_path)
    before = ciphertexts(a_settings(tmp_path).database)
    database = open_with(tmp_path, f"{NEW},{OLD}")
    try:
        counts = reencrypt_all(database)
    finally:
        database.close()
    assert counts == {"tenants.shared_secret": 2, "tenants.webhook_secret": 1,
                      "tenants.webhook_secret_previous": 1, "tenants.jira_token": 1,
                      "tenants.forge_system_token": 1,
                      "bindings.sentry_token": 3, "meta.key_check": 1}
    after = ciphertexts(a_settings(tmp_path).database)
    for where, values in after.items():  # every value rewritten, none left as it was
        assert not set(values) & set(before[where]), where
        assert len(values) == len(before[where])
    database = open_with(tmp_path, NEW)  # the key check passes under `new` alone
    try:
        asyncio.run(everything_readable(database, ids))
    finally:
        database.close()


def test_A_after_reencrypt_the_old_key_alone_is_refused(tmp_path: Path) -> None:
    populated(tmp_path)
    database = open_with(tmp_path, f"{NEW},{OLD}")
    reencrypt_all(database)
    database.close()
    with pytest.raises(ConfigError, match="SENTRY_JIRA_SECRET_KEY"):
        open_with(tmp_path, OLD)


def test_A_without_reencrypt_new_alone_is_refused(tmp_path: Path) -> None:
    """What the command fixes: the key check stays under `old` until it is rewritten."""
    populated(tmp_path)
    open_with(tmp_path, f"{NEW},{OLD}").close()
    with pytest.raises(ConfigError, match="SENTRY_JIRA_SECRET_KEY"):
        open_with(tmp_path, NEW)


def test_A_a_value_no_key_reads_rolls_everything_back(tmp_path: Path) -> None:
    populated(tmp_path)
    path = a_settings(tmp_path).database
    stray = Fernet(Fernet.generate_key()).encrypt(b"lost").decode()
    database = open_with(tmp_path, f"{NEW},{OLD}")
    try:
        database.write_sync(lambda db: db.execute(
            "UPDATE bindings SET sentry_token = ? WHERE org = 'globex'", [stray]))
        before = ciphertexts(path)
        with pytest.raises(UnreadableValueError, match=r"bindings\.sentry_token"):
            reencrypt_all(database)
    finally:
        database.close()
    assert ciphertexts(path) == before  # nothing half-rewritten


# -- the registry ---------------------------------------------------------------------------


def test_A_every_column_holding_a_secret_is_in_the_registry(tmp_path: Path) -> None:
    populated(tmp_path)
    path = a_settings(tmp_path).database
    registry = set(ENCRYPTED_COLUMNS)
    holding = columns_holding_fernet_tokens(path, [OLD])
    assert holding - {KEY_CHECK} <= registry, holding - registry
    assert columns_declared_encrypted(path) <= registry
    assert registry <= holding  # and each registered column exists and was populated


def test_A_the_registry_check_notices_a_missing_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan is what fails when a table gains a secret the registry lacks."""
    populated(tmp_path)
    path = a_settings(tmp_path).database
    holding = columns_holding_fernet_tokens(path, [OLD])
    short = tuple(c for c in ENCRYPTED_COLUMNS if c != ("bindings", "sentry_token"))
    assert not holding - {KEY_CHECK} <= set(short)
    assert not columns_declared_encrypted(path) <= set(short)
    # And reencrypt really reads the registry: with the column gone from it, the column is
    # left under the old key and `new` alone can no longer read it.
    monkeypatch.setattr(reencrypt_module, "ENCRYPTED_COLUMNS", short)
    database = open_with(tmp_path, f"{NEW},{OLD}")
    counts = reencrypt_all(database)
    database.close()
    assert "bindings.sentry_token" not in counts
    database = open_with(tmp_path, NEW)
    try:
        with pytest.raises(SecretBoxError, match="decrypted"):
            asyncio.run(sqlite_admin_stores(database).bindings.of_tenant(1))
    finally:
        database.close()


# -- the command ----------------------------------------------------------------------------


def run_cli(tmp_path: Path, keys: str | None, *args: str) -> tuple[int, str, str]:
    env = {"SENTRY_JIRA_DATABASE": str(a_settings(tmp_path).database),
           "SENTRY_JIRA_BASE_URL": "https://sentry-jira.example.com"}
    if keys is not None:
        env["SENTRY_JIRA_SECRET_KEY"] = keys
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_A_cli_reencrypt_json_prints_counts_never_values(tmp_path: Path) -> None:
    populated(tmp_path)
    code, out, err = run_cli(tmp_path, f"{NEW},{OLD}", "secrets", "reencrypt", "--json")
    assert code == 0, err
    assert json.loads(out) == {"reencrypted": {"tenants.shared_secret": 2,
                                               "tenants.webhook_secret": 1,
                                               "tenants.webhook_secret_previous": 1,
                                               "tenants.jira_token": 1,
                                               "tenants.forge_system_token": 1,
                                               "bindings.sentry_token": 3,
                                               "meta.key_check": 1}}
    code, out, err = run_cli(tmp_path, NEW, "secrets", "reencrypt")
    assert code == 0, err
    assert out.splitlines() == ["tenants.shared_secret: 2", "tenants.webhook_secret: 1",
                                "tenants.webhook_secret_previous: 1", "tenants.jira_token: 1",
                                "tenants.forge_system_token: 1",
                                "bindings.sentry_token: 3", "meta.key_check: 1"]
    for value in [*SECRETS.values(), *SENTRY_TOKENS.values(), *WEBHOOK_SECRETS, JIRA_TOKEN,
                  FORGE_TOKEN,
                  NEW, OLD]:
        assert value not in out + err


def test_A_cli_reencrypt_refusals_and_exit_codes(tmp_path: Path) -> None:
    code, _, err = run_cli(tmp_path, f"{NEW},{OLD}", "secrets", "reencrypt")
    assert code == 1 and "no database" in err  # a write command creates no database either
    assert not a_settings(tmp_path).database.exists()
    populated(tmp_path)
    code, _, err = run_cli(tmp_path, NEW, "secrets", "reencrypt")  # `old` is not listed
    assert code == 2 and "SENTRY_JIRA_SECRET_KEY" in err and NEW not in err
    code, _, err = run_cli(tmp_path, "not-a-key", "secrets", "reencrypt")
    assert code == 2 and "SENTRY_JIRA_SECRET_KEY" in err
    code, _, err = run_cli(tmp_path, f"{NEW},{OLD}", "secrets", "reencrypt", "--bogus")
    assert code == 2 and len(err.strip().splitlines()) == 1
    code, out, _ = run_cli(tmp_path, f"{NEW},{OLD}", "secrets", "reencrypt", "--help")
    assert code == 0 and "first key" in out
    # A value no key reads: refused (1), nothing changed, the value never printed.
    stray = Fernet(Fernet.generate_key()).encrypt(b"lost").decode()
    database = open_with(tmp_path, OLD)
    database.write_sync(lambda db: db.execute(
        "UPDATE bindings SET sentry_token = ? WHERE org = 'beta'", [stray]))
    database.close()
    before = ciphertexts(a_settings(tmp_path).database)
    code, out, err = run_cli(tmp_path, f"{NEW},{OLD}", "secrets", "reencrypt", "--json")
    assert code == 1 and "bindings.sentry_token" in err and stray not in out + err
    assert ciphertexts(a_settings(tmp_path).database) == before
