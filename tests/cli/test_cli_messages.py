"""§3 (#18): the CLI names what its user typed — flags, arguments and variables
(`--sentry-url`, `SENTRY_JIRA_SENTRY_TOKEN`, `ISSUE_KEY`) — never the API's JSON field names
(`sentry_url`) the core's validation uses; and every usage error has one shape:
`sentry-jira: error: <what> (see '<command> --help')`, exit 2, whether click or a command found
it. The translation is the CLI adapter's (adapters/cli/messages.py); the core is unchanged."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from adapters.cli.main import main
from adapters.cli.messages import FIELDS, LEADING, cli_message
from core.admin import bindings as admin
from core.admin import sites as site_use_cases
from core.admin.journal import parse_limit
from core.admin.validation import parse_status_map
from core.model.errors import BadRequest
from core.model.host_patterns import parse_host_patterns
from tests.support.builders import TEST_FERNET_KEY

USAGE = re.compile(r"^sentry-jira: error: .+ \(see 'sentry-jira( [a-z-]+)* --help'\)$")
API_NAMES = re.compile(r"\b(sentry_url|sentry_token|status_map|issue_key|sentry_issue_ids|"
                       r"account_id|sentry_user_id|resolution_strategy|sync_status|"
                       r"sync_assignee|skip_archived|base_url|auth\.kind|auth\.email|"
                       r"tenant id|site id|search token id|dead letter id)\b")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"SENTRY_JIRA_DATABASE": str(tmp_path / "sentry-jira.db"),
            "SENTRY_JIRA_SECRET_KEY": TEST_FERNET_KEY,
            "SENTRY_JIRA_JIRA_HOSTS": "http://127.0.0.1:*"}


def cli(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False,
                              prog_name="sentry-jira")


def refusal(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("sentry-jira: ") and "Traceback" not in result.output
    return line


# -- every refusal the core can raise, in the CLI's words ------------------------------------


def core_refusals() -> list[str]:
    """The details of the validation errors the CLI's commands can reach, raised by the real
    core code with bad input."""
    hosts = parse_host_patterns("https://*.atlassian.net")
    attempts = [
        lambda: admin.BindOrg.parse("x", "acme", {}),
        lambda: admin.BindOrg.parse("1", "Not A Slug", {}),
        lambda: admin.BindOrg.parse("1", "acme", {"sentry_url": "ftp://x"}),
        lambda: admin.BindOrg.parse("1", "acme", {"sentry_token": "has space"}),
        lambda: admin.BindOrg.parse("1", "acme", {"resolution_strategy": "later"}),
        lambda: admin.BindOrg.parse("1", "acme", {"status_map": {"1": {"resolve": [2]}}}),
        lambda: admin.BindingChanges.parse({}).apply(1, "acme", None),
        lambda: admin.BindingChanges.parse({"sentry_url": "https://sentry.io"}
                                           ).apply(1, "acme", None),
        lambda: parse_status_map({"x": {}}),
        lambda: parse_status_map({"1": {"resolve": ["2"], "unresolve": ["2"]}}),
        lambda: admin.PutLink.parse("1", "acme", "proj-1", {"sentry_issue_ids": ["1"]}),
        lambda: admin.PutLink.parse("1", "acme", "PROJ-1", {"sentry_issue_ids": ["x"]}),
        lambda: admin.MapAccount.parse("1", "acme", "a b", {"sentry_user_id": "1"}),
        lambda: admin.MapAccount.parse("1", "acme", "abc", {"sentry_user_id": "u:1"}),
        lambda: admin.SearchTokenRef.parse("acme", "x"),
        lambda: parse_limit("0", default=50),
        lambda: site_use_cases.RegisterSite.parse(
            {"base_url": "https://x.atlassian.net", "flavor": "cloud", "auth": {"kind": "pat"},
             "credential": "token"}, hosts),
        lambda: site_use_cases.RegisterSite.parse(
            {"base_url": "https://x.atlassian.net", "flavor": "data-center",
             "auth": {"kind": "api-token", "email": "a@b.example"}, "credential": "t"}, hosts),
        lambda: site_use_cases.RegisterSite.parse(
            {"base_url": "https://x.atlassian.net", "flavor": "cloud",
             "auth": {"kind": "api-token", "email": "nobody"}, "credential": "t"}, hosts),
        lambda: site_use_cases.RegisterSite.parse(
            {"base_url": "https://x.atlassian.net", "flavor": "cloud",
             "auth": {"kind": "api-token", "email": "a@b.example"}, "credential": "a b"}, hosts),
        lambda: site_use_cases.RegisterSite.parse(
            {"base_url": "https://elsewhere.example", "flavor": "cloud",
             "auth": {"kind": "api-token", "email": "a@b.example"}, "credential": "t"}, hosts),
        lambda: site_use_cases.SetCredential.parse("x", {"auth": {"kind": "pat"},
                                                         "credential": "t"}),
    ]
    details = []
    for attempt in attempts:
        with pytest.raises(BadRequest) as raised:
            attempt()
        details.append(raised.value.detail)
    return details


def test_3_no_core_refusal_reaches_the_cli_user_with_an_api_field_name() -> None:
    details = core_refusals()
    assert any(API_NAMES.search(detail) for detail in details)  # the core does name them
    for detail in details:
        shown = cli_message(detail)
        assert not API_NAMES.search(shown), (detail, shown)


@pytest.mark.parametrize(("detail", "shown"), [
    ("sentry_url is required when binding a new org", "--sentry-url is required when binding "
     "a new org"),
    ("sentry_token is required when binding a new org", "the Sentry token "
     "(SENTRY_JIRA_SENTRY_TOKEN or --sentry-token-stdin) is required when binding a new org"),
    ("status_map.10000.resolve[] must be a string of digits",
     "--status-map (10000.resolve[]) must be a string of digits"),
    ("sentry_issue_ids[] must be a string of digits",
     "each of SENTRY_ISSUE_IDS must be a string of digits"),
    ("org must be an org slug matching ^x$", "ORG must be an org slug matching ^x$"),
    ("tenant id must be an integer id", "TENANT_ID must be an integer id"),
    ("limit must be an integer between 1 and 500", "--limit must be an integer between 1 and "
     "500"),
    ('auth kind "pat" is for flavor "data-center"; use "api-token"',
     "--pat is for --flavor data-center; for cloud use --email <address>"),
])
def test_3_the_translation_table(detail: str, shown: str) -> None:
    assert cli_message(detail) == shown


@pytest.mark.parametrize("detail", [
    "org acme is not bound to tenant 1",  # prose: "org" here is a word, not the argument
    "no tenant 999",
    "Jira refused the credential: the token is not valid",
])
def test_3_prose_is_left_alone(detail: str) -> None:
    assert cli_message(detail) == detail


def test_3_every_mapped_name_is_a_flag_an_argument_or_a_variable() -> None:
    for shown in [*FIELDS.values(), *LEADING.values()]:
        assert re.search(r"--[a-z-]+|\b[A-Z][A-Z_]+\b", shown), shown


# -- through the real commands ------------------------------------------------------------------


def test_3_orgs_bind_without_a_token_names_the_variable(env: dict[str, str]) -> None:
    from adapters.sqlite.tenants import SqliteTenantStore
    from adapters.wiring import open_database
    from tests.support.admin_api import an_installation
    from tests.support.builders import a_settings

    database = open_database(a_settings(Path(env["SENTRY_JIRA_DATABASE"]).parent))
    try:
        import asyncio

        tenant = asyncio.run(SqliteTenantStore(database).upsert_installed(an_installation()))
    finally:
        database.close()
    line = refusal(cli(env, "orgs", "bind", str(tenant.id), "acme", "--sentry-url",
                       "https://sentry.io"), 1)
    assert "SENTRY_JIRA_SENTRY_TOKEN" in line and "--sentry-token-stdin" in line
    assert not API_NAMES.search(line)
    line = refusal(cli(env, "orgs", "bind", str(tenant.id), "acme"), 1)
    assert line == "sentry-jira: --sentry-url is required when binding a new org"


def test_3_sites_add_names_the_flags(env: dict[str, str]) -> None:
    env = {**env, "SENTRY_JIRA_JIRA_CREDENTIAL": "a-jira-pat-0123456789"}
    line = refusal(cli(env, "sites", "add", "http://127.0.0.1:9", "--flavor", "cloud", "--pat"),
                   1)
    assert line == ("sentry-jira: --pat is for --flavor data-center; for cloud use "
                    "--email <address>")
    line = refusal(cli(env, "sites", "add", "http://127.0.0.1:9", "--flavor", "cloud",
                       "--email", "not-an-address"), 1)
    assert line.startswith("sentry-jira: --email must be")


def test_3_journal_limit_names_the_option(env: dict[str, str]) -> None:
    assert cli(env, "tenants", "list").exit_code in (0, 1)  # nothing created by a read
    cli(env, "dead-letters", "retry", "1")  # creates the database (a write command)
    line = refusal(cli(env, "journal", "1", "--limit", "0"), 1)
    assert line.startswith("sentry-jira: --limit must be"), line


# -- one usage-error shape ------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["no-such-command"],                                   # click: unknown command
    ["tenants", "show"],                                   # click: missing argument
    ["serve", "--port", "http"],                           # click: bad option value
    ["orgs", "bind", "1", "acme", "--resolution-strategy", "later"],  # click: bad choice
    ["orgs", "bind", "1", "acme", "--status-map", "{nope"],  # ours: a callback
    ["orgs", "bind", "1", "acme", "--sentry-token", "x"],    # ours: a secret on the line
    ["sites", "add", "https://x.atlassian.net", "--flavor", "cloud"],  # ours: --email or --pat
    ["worker", "--metrics-port", "0"],                     # click: out of range
    ["--no-such-option"],
])
def test_3_every_usage_error_has_one_shape_and_exit_2(
    env: dict[str, str], argv: list[str],
) -> None:
    line = refusal(cli(env, *argv), 2)
    assert USAGE.match(line), line
