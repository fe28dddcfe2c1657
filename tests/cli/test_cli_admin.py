"""§A administration CLI, in process through click's runner: every operation, exit codes 0 / 1 / 2,
--json, the Sentry token's path. As real processes: tests/e2e/test_cli_process.py."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from adapters.cli.main import main
from adapters.config import Settings
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.wiring import bootstrap, open_database
from core.model.bindings import Binding
from core.model.tenant import Tenant
from tests.support.admin_api import SENTRY_TOKEN, SHARED_SECRET, an_installation
from tests.support.builders import TEST_FERNET_KEY, a_settings

ACCOUNT = "5b10ac8d82e05b22cc7d4ef5"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "SENTRY_JIRA_DATABASE": str(tmp_path / "sentry-jira.db"),
        "SENTRY_JIRA_SECRET_KEY": TEST_FERNET_KEY,
    }


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return a_settings(tmp_path)


@pytest.fixture
def tenant(settings: Settings) -> Tenant:
    database = open_database(settings)
    try:
        return asyncio.run(SqliteTenantStore(database).upsert_installed(an_installation()))
    finally:
        database.close()


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, input=stdin, catch_exceptions=False)


def stored_binding(settings: Settings, tenant_id: int, org: str) -> Binding | None:
    container = bootstrap(settings)
    try:
        return asyncio.run(container.admin.bindings.get(tenant_id, org))
    finally:
        container.close()


API_FIELDS = ("sentry_url", "sentry_token", "status_map", "issue_key", "sentry_issue_ids",
              "account_id", "sentry_user_id", "resolution_strategy", "tenant id", "auth.")


def assert_refused(result: Result, code: int, word: str) -> None:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sentry-jira: ") and word in lines[0]
    if code == 2 and "configuration error" not in lines[0]:  # §3 (#18): one usage shape
        assert lines[0].startswith("sentry-jira: error: ") and lines[0].endswith(" --help')")
    for field in API_FIELDS:  # §3 (#18): the CLI's names, never the API's
        assert field not in lines[0], lines[0]
    assert result.stdout == ""


def bind(env: dict[str, str], tenant: Tenant, org: str = "acme", *extra: str) -> Result:
    with_token = {**env, "SENTRY_JIRA_SENTRY_TOKEN": SENTRY_TOKEN}
    return cli(
        with_token, "orgs", "bind", str(tenant.id), org, "--sentry-url", "https://sentry.io", *extra
    )


# -- help -----------------------------------------------------------------------------------

COMMANDS = [
    [],
    ["tenants"],
    ["tenants", "list"],
    ["tenants", "show"],
    ["orgs"],
    ["orgs", "bind"],
    ["orgs", "show"],
    ["orgs", "unbind"],
    ["links"],
    ["links", "set"],
    ["links", "show"],
    ["links", "delete"],
    ["accounts"],
    ["accounts", "map"],
    ["accounts", "unmap"],
    ["search-tokens"],
    ["search-tokens", "create"],
    ["search-tokens", "list"],
    ["search-tokens", "revoke"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_A_help_everywhere(env: dict[str, str], command: list[str]) -> None:
    result = cli(env, *command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output


# -- tenants --------------------------------------------------------------------------------


def test_A_tenants_list_and_show(env: dict[str, str], tenant: Tenant) -> None:
    assert bind(env, tenant).exit_code == 0
    listed = cli(env, "tenants", "list", "--json")
    assert listed.exit_code == 0
    assert json.loads(listed.stdout) == [
        {
            "id": tenant.id,
            "transport": "connect",
            "client_key": "jira-client-1",
            "base_url": "https://acme.atlassian.net",
            "display_url": "https://jira.acme.example",
            "status": "installed",
            "installed_at": "2026-01-02T03:04:05Z",
            "orgs": ["acme"],
        }
    ]
    plain = cli(env, "tenants", "list")
    assert plain.exit_code == 0 and "jira-client-1" in plain.stdout and "acme" in plain.stdout
    shown = cli(env, "tenants", "show", str(tenant.id), "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["id"] == tenant.id
    assert SHARED_SECRET not in listed.stdout + plain.stdout + shown.stdout


def test_A_tenants_show_refuses_unknown_and_malformed_ids(
    env: dict[str, str], tenant: Tenant
) -> None:
    assert_refused(cli(env, "tenants", "show", "999"), 1, "no tenant 999")
    assert_refused(cli(env, "tenants", "show", "abc"), 1, "TENANT_ID must be an integer id")
    assert_refused(cli(env, "tenants", "show"), 2, "TENANT_ID")


# -- orgs -----------------------------------------------------------------------------------


def test_A_bind_with_the_token_from_the_environment(
    env: dict[str, str], settings: Settings, tenant: Tenant
) -> None:
    result = bind(
        env,
        tenant,
        "acme",
        "--no-sync-assignee",
        "--status-map",
        '{"10000": {"resolve": ["5"]}}',
        "--json",
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["sentry_token"] == "***"
    assert shown["sync_assignee"] is False and shown["sync_status"] is True
    assert shown["status_map"] == {"10000": {"resolve": ["5"], "unresolve": []}}
    assert SENTRY_TOKEN not in result.output
    stored = stored_binding(settings, tenant.id, "acme")
    assert stored is not None and stored.sentry_token == SENTRY_TOKEN


def test_A_bind_with_the_token_from_stdin(
    env: dict[str, str], settings: Settings, tenant: Tenant
) -> None:
    result = cli(
        env,
        "orgs",
        "bind",
        str(tenant.id),
        "acme",
        "--sentry-url",
        "https://sentry.io",
        "--sentry-token-stdin",
        stdin="stdin-sentry-token-0123456789\n",
    )
    assert result.exit_code == 0, result.output
    stored = stored_binding(settings, tenant.id, "acme")
    assert stored is not None and stored.sentry_token == "stdin-sentry-token-0123456789"
    assert "stdin-sentry-token" not in result.output


def test_A_bind_refuses_a_token_on_the_command_line(
    env: dict[str, str], settings: Settings, tenant: Tenant
) -> None:
    for option in (["--sentry-token", SENTRY_TOKEN], [f"--sentry-token={SENTRY_TOKEN}"]):
        result = cli(
            env,
            "orgs",
            "bind",
            str(tenant.id),
            "acme",
            "--sentry-url",
            "https://sentry.io",
            *option,
        )
        assert_refused(result, 2, "never taken from the command line")
        assert SENTRY_TOKEN not in result.stderr
    assert stored_binding(settings, tenant.id, "acme") is None


def test_A_bind_update_keeps_the_token_and_omitted_settings(
    env: dict[str, str], settings: Settings, tenant: Tenant
) -> None:
    assert bind(env, tenant, "acme", "--skip-archived").exit_code == 0
    result = cli(
        env, "orgs", "bind", str(tenant.id), "acme", "--resolution-strategy", "resolve_next_release"
    )
    assert result.exit_code == 0, result.output
    stored = stored_binding(settings, tenant.id, "acme")
    assert stored is not None
    assert stored.sentry_token == SENTRY_TOKEN and stored.skip_archived is True
    assert stored.resolution_strategy.value == "resolve_next_release"


def test_A_bind_refusals(env: dict[str, str], settings: Settings, tenant: Tenant) -> None:
    no_token = cli(env, "orgs", "bind", str(tenant.id), "acme", "--sentry-url", "https://sentry.io")
    # §3 (#18): the CLI's own names, not the API's fields (sentry_token, status_map, …)
    assert_refused(no_token, 1, "the Sentry token (SENTRY_JIRA_SENTRY_TOKEN or "
                                "--sentry-token-stdin) is required")
    assert_refused(bind(env, tenant, "Not-A-Slug"), 1, "ORG must be an org slug")
    assert_refused(bind(env, tenant, "acme", "--status-map", "{nope"), 2, "--status-map")
    assert_refused(bind(env, tenant, "acme", "--status-map", '{"x": {}}'), 1,
                   "--status-map keys must be")
    assert_refused(bind(env, tenant, "acme", "--status-map", '{"1": {"resolve": [2]}}'), 1,
                   "--status-map (1.resolve[]) must be a string of digits")
    assert_refused(
        bind(env, tenant, "acme", "--resolution-strategy", "later"), 2, "resolution-strategy"
    )
    empty_stdin = cli(
        env,
        "orgs",
        "bind",
        str(tenant.id),
        "acme",
        "--sentry-url",
        "https://sentry.io",
        "--sentry-token-stdin",
        stdin="",
    )
    assert_refused(empty_stdin, 1, "standard input was empty")
    with_token = {**env, "SENTRY_JIRA_SENTRY_TOKEN": SENTRY_TOKEN}
    bad_url = cli(
        with_token, "orgs", "bind", str(tenant.id), "acme", "--sentry-url", "https://u:p@sentry.io"
    )
    assert_refused(bad_url, 1, "--sentry-url")
    unknown = cli(with_token, "orgs", "bind", "999", "acme", "--sentry-url", "https://sentry.io")
    assert_refused(unknown, 1, "no tenant 999")
    assert stored_binding(settings, tenant.id, "acme") is None


def test_A_orgs_show_and_unbind(env: dict[str, str], settings: Settings, tenant: Tenant) -> None:
    assert bind(env, tenant).exit_code == 0
    shown = cli(env, "orgs", "show", str(tenant.id), "acme")
    assert shown.exit_code == 0 and "sentry_token: ***" in shown.stdout
    assert SENTRY_TOKEN not in shown.stdout
    unbound = cli(env, "orgs", "unbind", str(tenant.id), "acme", "--json")
    assert unbound.exit_code == 0 and json.loads(unbound.stdout) == {"unbound": "acme"}
    assert stored_binding(settings, tenant.id, "acme") is None
    assert_refused(cli(env, "orgs", "unbind", str(tenant.id), "acme"), 1, "not bound")
    assert_refused(cli(env, "orgs", "show", str(tenant.id), "acme"), 1, "not bound")


# -- links ----------------------------------------------------------------------------------


def test_A_links_set_show_delete(env: dict[str, str], tenant: Tenant) -> None:
    assert bind(env, tenant).exit_code == 0
    tid = str(tenant.id)
    made = cli(env, "links", "set", tid, "acme", "PROJ-1", "30", "4", "--json")
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout) == {"issue_key": "PROJ-1", "sentry_issue_ids": ["4", "30"]}
    shown = cli(env, "links", "show", tid, "acme", "PROJ-1")
    assert shown.exit_code == 0 and shown.stdout.strip() == "PROJ-1\t4,30"
    deleted = cli(env, "links", "delete", tid, "acme", "PROJ-1")
    assert deleted.exit_code == 0
    assert_refused(cli(env, "links", "show", tid, "acme", "PROJ-1"), 1, "no link")
    assert_refused(cli(env, "links", "delete", tid, "acme", "PROJ-1"), 1, "no link")


def test_A_links_refusals(env: dict[str, str], tenant: Tenant) -> None:
    assert bind(env, tenant).exit_code == 0
    tid = str(tenant.id)
    assert_refused(cli(env, "links", "set", tid, "acme", "proj-1", "1"), 1, "ISSUE_KEY must be")
    assert_refused(cli(env, "links", "set", tid, "acme", "PROJ-1", "x1"), 1,
                   "each of SENTRY_ISSUE_IDS must be")
    assert_refused(cli(env, "links", "set", tid, "other", "PROJ-1", "1"), 1, "not bound")
    assert_refused(cli(env, "links", "set", tid, "acme", "PROJ-1"), 2, "SENTRY_ISSUE_IDS")


# -- accounts -------------------------------------------------------------------------------


def test_A_accounts_map_and_unmap(env: dict[str, str], tenant: Tenant) -> None:
    assert bind(env, tenant).exit_code == 0
    tid = str(tenant.id)
    mapped = cli(env, "accounts", "map", tid, "acme", ACCOUNT, "42", "--json")
    assert mapped.exit_code == 0
    assert json.loads(mapped.stdout) == {"account_id": ACCOUNT, "sentry_user_id": "42"}
    assert cli(env, "accounts", "unmap", tid, "acme", ACCOUNT).exit_code == 0
    assert_refused(cli(env, "accounts", "unmap", tid, "acme", ACCOUNT), 1, "no mapping")
    assert_refused(cli(env, "accounts", "map", tid, "acme", ACCOUNT, "user:1"), 1,
                   "SENTRY_USER_ID must be")
    assert_refused(cli(env, "accounts", "map", tid, "acme", "a b", "1"), 1, "ACCOUNT_ID must be")
    assert_refused(cli(env, "accounts", "map", tid, "acme", ACCOUNT), 2, "SENTRY_USER_ID")


# -- search tokens --------------------------------------------------------------------------


def test_A_search_tokens_create_list_revoke(env: dict[str, str], settings: Settings) -> None:
    created = cli(env, "search-tokens", "create", "acme", "--json")
    assert created.exit_code == 0
    issued = json.loads(created.stdout)
    container = bootstrap(settings)
    try:
        assert asyncio.run(container.admin.search_tokens.verify("acme", issued["token"]))
    finally:
        container.close()
    listed = cli(env, "search-tokens", "list", "acme", "--json")
    assert [t["id"] for t in json.loads(listed.stdout)] == [issued["id"]]
    assert issued["token"] not in listed.stdout
    revoked = cli(env, "search-tokens", "revoke", "acme", str(issued["id"]))
    assert revoked.exit_code == 0
    assert json.loads(cli(env, "search-tokens", "list", "acme", "--json").stdout) == []
    assert_refused(
        cli(env, "search-tokens", "revoke", "acme", str(issued["id"])), 1, "no search token"
    )
    assert_refused(cli(env, "search-tokens", "revoke", "acme", "x"), 1, "TOKEN_ID must be")
    assert_refused(cli(env, "search-tokens", "create", "ACME"), 1, "org")


def test_A_a_configuration_error_exits_2(env: dict[str, str]) -> None:
    result = cli({**env, "SENTRY_JIRA_SECRET_KEY": "not-a-key"}, "tenants", "list")
    assert_refused(result, 2, "SENTRY_JIRA_SECRET_KEY")
