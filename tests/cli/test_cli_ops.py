"""SPEC §3 (#18): `--version`, read-only commands on a missing database, empty results,
header lines, `--json` everywhere, one-line start-up failures (exit 2, no traceback)."""

from __future__ import annotations

import asyncio
import json
import socket
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from adapters.cli.main import main
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.wiring import open_database
from tests.support.admin_api import an_installation
from tests.support.builders import TEST_FERNET_KEY, a_settings


def cli(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def env_for(database: Path, **extra: str) -> dict[str, str]:
    return {"SENTRY_JIRA_DATABASE": str(database), **extra}


def one_line(result: Result, code: int, text: str) -> None:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("sentry-jira: "), result.stderr
    assert text in lines[0], lines[0]
    assert "Traceback" not in result.output


def test_version_prints_the_installed_package_version() -> None:
    result = cli({}, "--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"sentry-jira {version('sentry-jira')}"


READ_ONLY = [
    ["tenants", "list"],
    ["tenants", "show", "1"],
    ["orgs", "show", "1", "acme"],
    ["links", "show", "1", "acme", "ABC-1"],
    ["search-tokens", "list", "acme"],
    ["journal", "1"],
    ["dead-letters", "list"],
]


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
@pytest.mark.parametrize("with_key", [False, True], ids=["key file", "key variable"])
def test_a_read_only_command_on_a_missing_database_creates_nothing_and_says_so(
    tmp_path: Path, args: list[str], with_key: bool
) -> None:
    database = tmp_path / "nowhere.db"
    env = env_for(database, **({"SENTRY_JIRA_SECRET_KEY": TEST_FERNET_KEY} if with_key else {}))
    result = cli(env, *args)
    one_line(result, 1, f"no database at {database} (set SENTRY_JIRA_DATABASE)")
    assert list(tmp_path.iterdir()) == []  # neither a database nor a key file


def test_a_read_only_command_in_a_missing_directory_creates_nothing(tmp_path: Path) -> None:
    result = cli(env_for(tmp_path / "absent" / "db.sqlite"), "tenants", "list")
    one_line(result, 1, "no database at")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def empty_database(tmp_path: Path) -> dict[str, str]:
    open_database(a_settings(tmp_path)).close()
    return {"SENTRY_JIRA_DATABASE": str(tmp_path / "sentry-jira.db"),
            "SENTRY_JIRA_SECRET_KEY": TEST_FERNET_KEY}


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["tenants", "list"], "no tenants yet: install the app in Jira"),
        (["dead-letters", "list"], "no dead letters"),
        (["search-tokens", "list", "acme"], "no search tokens for acme"),
    ],
)
def test_empty_results_say_so(empty_database: dict[str, str], args: list[str], said: str) -> None:
    result = cli(empty_database, *args)
    assert result.exit_code == 0, result.output
    assert said in result.stdout
    assert json.loads(cli(empty_database, *args, "--json").stdout) == []


def test_tab_separated_output_has_a_header_line(
    tmp_path: Path, empty_database: dict[str, str]
) -> None:
    database = open_database(a_settings(tmp_path))
    try:
        tenant = asyncio.run(SqliteTenantStore(database).upsert_installed(an_installation()))
    finally:
        database.close()
    result = cli(empty_database, "tenants", "list")
    header, row = result.stdout.splitlines()
    assert header.split("\t") == ["id", "status", "client_key", "base_url", "orgs"]
    assert row.split("\t")[0] == str(tenant.id)
    issued = cli(empty_database, "search-tokens", "create", "acme")
    assert issued.exit_code == 0
    header, _ = cli(empty_database, "search-tokens", "list", "acme").stdout.splitlines()
    assert header == "id\tcreated_at"


def leaf_commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += leaf_commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


NO_OUTPUT_DATA = {("serve",), ("worker",)}  # they run; they print no data


def test_every_command_that_prints_data_accepts_json() -> None:
    leaves = leaf_commands(main)
    assert len(leaves) > 10
    for path in leaves:
        if path in NO_OUTPUT_DATA:
            continue
        command: click.Command = main
        for name in path:
            assert isinstance(command, click.Group)
            command = command.commands[name]
        options = {opt for param in command.params for opt in param.opts}
        assert "--json" in options, " ".join(path)


# -- start-up failures: one line, exit 2 ------------------------------------------------------


def test_a_file_that_is_not_a_database_is_one_line_exit_2(tmp_path: Path) -> None:
    database = tmp_path / "notes.txt"
    database.write_text("these are my notes, not a database\n" * 20)
    for args in (["tenants", "list"], ["search-tokens", "create", "acme"], ["serve"]):
        result = cli(env_for(database, SENTRY_JIRA_SECRET_KEY=TEST_FERNET_KEY), *args,
                     *(["--port", "0"] if args == ["serve"] else []))
        one_line(result, 2, f"SENTRY_JIRA_DATABASE: {database} is not a SQLite database")
    assert database.read_text().startswith("these are my notes")  # untouched


def test_a_missing_directory_is_one_line_exit_2_and_is_not_created(tmp_path: Path) -> None:
    database = tmp_path / "absent" / "sentry-jira.db"
    for args in (["search-tokens", "create", "acme"], ["serve", "--port", "0"], ["worker"]):
        result = cli(env_for(database), *args)
        one_line(result, 2, f"the directory {database.parent} does not exist")
    assert not database.parent.exists()


def test_serve_on_a_port_in_use_is_one_line_exit_2_before_the_database_is_opened(
    tmp_path: Path,
) -> None:
    database = tmp_path / "sentry-jira.db"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = cli(env_for(database), "serve", "--port", str(port))
    one_line(result, 2, f"port {port} is in use: pass --port")
    assert list(tmp_path.iterdir()) == []  # no database, no key file


def test_a_bad_log_variable_is_one_line_exit_2(tmp_path: Path) -> None:
    result = cli(env_for(tmp_path / "x.db", SENTRY_JIRA_LOG_LEVEL="loud"), "tenants", "list")
    one_line(result, 2, "SENTRY_JIRA_LOG_LEVEL: expected one of")


def test_an_unknown_variable_is_warned_about_by_the_cli_too(
    empty_database: dict[str, str],
) -> None:
    result = cli({**empty_database, "SENTRY_JIRA_ADMIN_TOKENS": "x"}, "tenants", "list")
    assert result.exit_code == 0
    assert "unknown variable SENTRY_JIRA_ADMIN_TOKENS" in result.stderr
    assert "did you mean SENTRY_JIRA_ADMIN_TOKEN?" in result.stderr
