"""§A CLI (#11 items 10 and 11b): a new Sentry URL needs a new token; no value typed on the
command line is ever echoed back in an error (a token pasted there by mistake stays unseen)."""

from __future__ import annotations

import pytest

from adapters.config import Settings
from core.model.tenant import Tenant
from tests.cli import test_cli_admin as admin_cli
from tests.cli.test_cli_admin import assert_refused, bind, cli, stored_binding
from tests.support.admin_api import OTHER_SENTRY_TOKEN, SENTRY_TOKEN

# The fixtures of the admin CLI tests: a database path, its settings, one installed tenant.
env = admin_cli.env
settings = admin_cli.settings
tenant = admin_cli.tenant

PASTED = "sntrys_eyJpYXQiOjE3MzU2ODk2MDB9_PastedByMistake0123456789"


# -- item 10 --------------------------------------------------------------------------------


def test_A_bind_with_a_new_url_and_no_token_is_refused_and_keeps_the_binding(
    env: dict[str, str], settings: Settings, tenant: Tenant
) -> None:
    assert bind(env, tenant).exit_code == 0
    before = stored_binding(settings, tenant.id, "acme")
    moved = cli(
        env, "orgs", "bind", str(tenant.id), "acme", "--sentry-url", "https://sentry.evil.example"
    )
    assert_refused(moved, 1, "changing --sentry-url requires the Sentry token "
                             "(SENTRY_JIRA_SENTRY_TOKEN or --sentry-token-stdin)")
    assert stored_binding(settings, tenant.id, "acme") == before


def test_A_bind_with_a_new_url_and_a_new_token_moves_both(
    env: dict[str, str], settings: Settings, tenant: Tenant
) -> None:
    assert bind(env, tenant).exit_code == 0
    from_stdin = cli(
        env,
        "orgs",
        "bind",
        str(tenant.id),
        "acme",
        "--sentry-url",
        "https://sentry.other.example",
        "--sentry-token-stdin",
        stdin=OTHER_SENTRY_TOKEN + "\n",
    )
    assert from_stdin.exit_code == 0, from_stdin.output
    stored = stored_binding(settings, tenant.id, "acme")
    assert stored is not None
    assert (stored.sentry_url, stored.sentry_token) == (
        "https://sentry.other.example",
        OTHER_SENTRY_TOKEN,
    )


def test_A_bind_with_the_same_url_and_no_token_keeps_the_token(
    env: dict[str, str], settings: Settings, tenant: Tenant
) -> None:
    assert bind(env, tenant).exit_code == 0
    same = cli(
        env,
        "orgs",
        "bind",
        str(tenant.id),
        "acme",
        "--sentry-url",
        "https://sentry.io/",
        "--no-sync-status",
    )
    assert same.exit_code == 0, same.output
    stored = stored_binding(settings, tenant.id, "acme")
    assert stored is not None and stored.sentry_token == SENTRY_TOKEN
    assert stored.sync_status is False


# -- item 11b -------------------------------------------------------------------------------

MISTAKES = [
    ["orgs", "bind", "1", "acme", PASTED],
    ["orgs", "bind", "1", "acme", "--sentry-url", "https://sentry.io", PASTED],
    ["orgs", "bind", "1", "acme", "--token", PASTED],
    ["orgs", "bind", "1", "acme", f"--token={PASTED}"],
    ["orgs", "bind", "1", "acme", "--sentry-token", PASTED],
    ["orgs", "bind", "1", "acme", f"--sentry-token={PASTED}"],
    ["orgs", "bind", "1", "acme", "--resolution-strategy", PASTED],
    ["orgs", "bind", "1", "acme", f"--sync-status={PASTED}"],
    ["orgs", "bind", "1", "acme", f"--{PASTED}"],
    ["orgs", PASTED],
    [PASTED],
    [f"--{PASTED}"],
    ["tenants", "show", "1", PASTED],
    ["links", "set", "1", "acme", "APP-1", "1", f"--x={PASTED}"],
    ["search-tokens", "create", "acme", PASTED],
    ["dead-letters", "list", PASTED],
    ["serve", "--port", PASTED],
]


@pytest.mark.parametrize("argv", MISTAKES, ids=[" ".join(a)[:48] for a in MISTAKES])
def test_A_a_token_on_the_command_line_is_never_echoed(
    env: dict[str, str], argv: list[str]
) -> None:
    result = cli(env, *argv)
    assert result.exit_code == 2, result.output
    assert PASTED not in result.output
    assert PASTED[:16] not in result.output  # not even a piece of it
    assert_refused(result, 2, "see '")


def test_A_the_hidden_value_is_shown_as_a_placeholder_and_names_still_are(
    env: dict[str, str],
) -> None:
    result = cli(env, "orgs", "bind", "1", "acme", "--resolution-strategy", PASTED)
    assert "'--resolution-strategy'" in result.stderr and "<argument>" in result.stderr
    assert "resolve_next_release" in result.stderr  # the choices are names, not input
    typo = cli(env, "orgs", "bind", "1", "acme", "--sentry-tok", PASTED)
    assert "--sentry-tok" in typo.stderr and PASTED not in typo.stderr
