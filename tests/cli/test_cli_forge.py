"""SPEC §8.2 (first bullet): `sentry-jira forge manifest [--out FILE] [--connect-modules]`.

Standard output or a file, YAML that reads back as the core builder's manifest, and every
configuration mistake one line on stderr with exit 2 (no file written, no traceback).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from adapters.cli.main import main
from adapters.config import ConfigError, load_settings
from core.forge_manifest import FORGE_ENDPOINT_KEYS, forge_manifest

APP_ID = "ari:cloud:ecosystem::app/406d303d-0393-4ec4-ad7c-1435be94583a"


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "SENTRY_JIRA_BASE_URL": "https://sentry-jira.example.com/base",
        "SENTRY_JIRA_DATABASE": str(tmp_path / "sentry-jira.db"),
        "SENTRY_JIRA_FORGE_APP_ID": APP_ID,
    }
    env.update({f"SENTRY_JIRA_{k.upper()}": v for k, v in extra.items()})
    return env


def cli(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, ["forge", "manifest", *args], env=env,
                              catch_exceptions=False)


def one_line_error(result: Result, text: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sentry-jira: configuration error: "), lines
    assert text in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_8_2_prints_the_manifest_yaml_of_the_configuration(tmp_path: Path) -> None:
    env = environment(tmp_path)
    result = cli(env)
    assert result.exit_code == 0, result.output
    document = yaml.safe_load(result.stdout)
    settings = load_settings(env)
    assert document == forge_manifest(settings.app, app_id=APP_ID)
    assert document["remotes"][0]["baseUrl"] == "https://sentry-jira.example.com/base"
    assert not (tmp_path / "sentry-jira.db").exists()  # configuration only: no database


def test_8_2_out_writes_the_file_and_connect_modules_adds_the_connect_part(
    tmp_path: Path,
) -> None:
    out = tmp_path / "manifest.yml"
    result = cli(environment(tmp_path, use_email_scope="true"), "--out", str(out),
                 "--connect-modules")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    document = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert document["app"]["connect"]["key"] == "sentry-jira.example.com.jira"
    assert "jira:webhooks" in document["connectModules"]
    assert "access-email-addresses:connect-jira" in document["permissions"]["scopes"]
    assert "read:email-address:jira" in document["permissions"]["scopes"]
    paths = {e["key"]: e["route"]["path"] for e in document["modules"]["endpoint"]}
    assert paths[FORGE_ENDPOINT_KEYS["issue-updated"]] == "/extensions/jira/forge/issue-updated/"


def test_json_prints_the_same_manifest_as_json(tmp_path: Path) -> None:
    env = environment(tmp_path)
    as_json = cli(env, "--json", "--connect-modules")
    as_yaml = cli(env, "--connect-modules")
    assert as_json.exit_code == 0 and as_yaml.exit_code == 0
    assert json.loads(as_json.stdout) == yaml.safe_load(as_yaml.stdout)


def test_8_2_without_an_app_id_it_refuses_in_one_line(tmp_path: Path) -> None:
    env = environment(tmp_path)
    del env["SENTRY_JIRA_FORGE_APP_ID"]
    out = tmp_path / "manifest.yml"
    one_line_error(cli(env, "--out", str(out)), "SENTRY_JIRA_FORGE_APP_ID")
    assert not out.exists()


@pytest.mark.parametrize(
    "app_id",
    [
        "406d303d-0393-4ec4-ad7c-1435be94583a",
        "ari:cloud:ecosystem::app/not-a-uuid",
        "ari:cloud:ecosystem::installation/406d303d-0393-4ec4-ad7c-1435be94583a",
        "ari:cloud:ecosystem::app/406d303d-0393-4ec4-ad7c-1435be94583a extra",
    ],
)
def test_8_2_a_malformed_app_id_is_refused_in_one_line(tmp_path: Path, app_id: str) -> None:
    out = tmp_path / "manifest.yml"
    result = cli(environment(tmp_path, forge_app_id=app_id), "--out", str(out))
    one_line_error(result, "SENTRY_JIRA_FORGE_APP_ID")
    assert not out.exists()


def test_8_2_a_base_url_without_https_is_refused(tmp_path: Path) -> None:
    result = cli(environment(tmp_path, base_url="http://sentry-jira.example.com"))
    one_line_error(result, "SENTRY_JIRA_BASE_URL")


def test_an_unwritable_out_file_is_exit_1_in_one_line(tmp_path: Path) -> None:
    result = cli(environment(tmp_path), "--out", str(tmp_path / "missing" / "manifest.yml"))
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("sentry-jira: cannot write ")
    assert "Traceback" not in result.output


def test_3_1_the_forge_app_id_variable_is_validated_at_start_up() -> None:
    """A malformed SENTRY_JIRA_FORGE_APP_ID stops every command (`serve` included), naming
    the variable; unset means Forge is off."""
    assert load_settings({}).app.forge_app_id is None
    assert load_settings({"SENTRY_JIRA_FORGE_APP_ID": APP_ID}).app.forge_app_id == APP_ID
    with pytest.raises(ConfigError) as raised:
        load_settings({"SENTRY_JIRA_FORGE_APP_ID": "app/406d303d"})
    assert raised.value.variable == "SENTRY_JIRA_FORGE_APP_ID"
