"""`sentry-jira sites …` in process through click's runner, on a SQLite file, against the fake
Jira on loopback (#13; SPEC §8.1, §A, §3.1 SENTRY_JIRA_JIRA_CREDENTIAL): the credential from the
environment or standard input, never argv; the secret printed once with the URL to paste; exit
codes 0 / 1 / 2. As real processes beside a running `serve`: tests/e2e/test_cli_sites.py."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from adapters.cli.main import main
from adapters.sqlite.tenants import SqliteTenantStore
from adapters.wiring import open_database
from core.model.credentials import ApiToken, PersonalAccessToken
from core.model.tenant import Tenant, TenantStatus
from tests.support.builders import TEST_FERNET_KEY, a_settings
from tests.support.fake_jira import FakeJira

EMAIL = "jira-bot@example.com"
TOKEN = "cloud-api-token-0123456789abcdef"
PAT = "data-center-pat-0123456789abcdef"
BASE = "https://sentry-jira.example.com"
URL_SAFE_RUN = re.compile(r"[A-Za-z0-9_-]{43,}")


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira(a_settings().app.app_key) as server:
        server.add_cloud_token_site("cloud-1", EMAIL, TOKEN)
        server.add_data_center_site("dc-1", PAT, base_path="/jira")
        yield server


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "SENTRY_JIRA_DATABASE": str(tmp_path / "sentry-jira.db"),
        "SENTRY_JIRA_SECRET_KEY": TEST_FERNET_KEY,
        "SENTRY_JIRA_BASE_URL": BASE,
        "SENTRY_JIRA_JIRA_HOSTS": "http://127.0.0.1:*",
        "SENTRY_JIRA_HTTP_TIMEOUT_SECONDS": "2",
    }


def sites(env: dict[str, str], *args: str, credential: str | None = None,
          stdin: str | None = None) -> Result:
    environ = dict(env)
    if credential is not None:
        environ["SENTRY_JIRA_JIRA_CREDENTIAL"] = credential
    return CliRunner().invoke(main, ["sites", *args], env=environ, input=stdin,
                              catch_exceptions=False)


def stored(env: dict[str, str]) -> list[Tenant]:
    database = open_database(a_settings(Path(env["SENTRY_JIRA_DATABASE"]).parent))
    try:
        return asyncio.run(SqliteTenantStore(database).list_all())
    finally:
        database.close()


def added(env: dict[str, str], jira: FakeJira) -> dict[str, Any]:
    done = sites(env, "add", jira.url, "--flavor", "cloud", "--email", EMAIL, "--json",
                 credential=TOKEN)
    assert done.exit_code == 0, done.output
    return dict(json.loads(done.stdout))


def test_8_1_add_cloud_from_the_environment_prints_the_url_and_the_secret_once(
    env: dict[str, str], jira: FakeJira,
) -> None:
    done = sites(env, "add", jira.url, "--flavor", "cloud", "--email", EMAIL, credential=TOKEN)
    assert done.exit_code == 0, done.output
    (site,) = stored(env)
    assert site.webhook_secrets is not None
    secret = site.webhook_secrets.current
    assert URL_SAFE_RUN.findall(done.stdout) == [secret]
    assert f"{BASE}/extensions/jira/webhook/{site.id}/" in done.stdout
    assert TOKEN not in done.output
    assert site.site_credential == ApiToken(EMAIL, TOKEN)
    assert [(r.route, r.verified) for r in jira.requests] == [("myself", True)]


def test_8_1_add_data_center_from_standard_input_with_json(
    env: dict[str, str], jira: FakeJira,
) -> None:
    done = sites(env, "add", jira.url + "/jira", "--flavor", "data-center", "--pat", "--json",
                 stdin=PAT + "\n")
    assert done.exit_code == 0, done.output
    created = json.loads(done.stdout)
    (site,) = stored(env)
    assert created == {"id": site.id, "transport": "webhook", "flavor": "data-center",
                       "base_url": jira.url + "/jira",
                       "webhook_url": f"{BASE}/extensions/jira/webhook/{site.id}/",
                       "webhook_secret": site.webhook_secrets.current}  # type: ignore[union-attr]
    assert site.site_credential == PersonalAccessToken(PAT)


def test_8_1_a_refused_or_missing_credential_exits_1_and_stores_nothing(
    env: dict[str, str], jira: FakeJira,
) -> None:
    wrong = "wrong-token-0123456789abcdef"
    done = sites(env, "add", jira.url, "--flavor", "cloud", "--email", EMAIL, credential=wrong)
    assert done.exit_code == 1 and "refused" in done.stderr
    assert wrong not in done.output
    empty = sites(env, "add", jira.url, "--flavor", "cloud", "--email", EMAIL, stdin="")
    assert empty.exit_code == 1 and "credential" in empty.stderr
    assert [(r.route, r.verified) for r in jira.requests] == [("myself", False)]
    assert stored(env) == []


@pytest.mark.parametrize("argv", [
    ["add", "URL", "--flavor", "cloud", "--email", EMAIL, "--credential", "PASTED"],
    ["add", "URL", "--flavor", "cloud", "--email", EMAIL, "--credential=PASTED"],
    ["add", "URL", "--flavor", "cloud", "--email", EMAIL, "--api-token", "PASTED"],
    ["add", "URL", "PASTED", "--flavor", "cloud", "--email", EMAIL],
    ["add", "URL", "--flavor", "data-center", "--pat", "PASTED"],
    ["add", "URL", "--flavor", "data-center", "--pat=PASTED"],
    ["add", "URL", "--flavor", "cloud"],                             # neither --email nor --pat
    ["add", "URL", "--flavor", "cloud", "--email", EMAIL, "--pat"],  # both
    ["add", "URL", "--flavor", "server", "--pat"],
    ["set-credential", "1", "PASTED"],
    ["set-credential", "1", "--token", "PASTED"],
])
def test_A_usage_errors_exit_2_and_never_echo_a_typed_value(
    env: dict[str, str], jira: FakeJira, argv: list[str],
) -> None:
    pasted = "pasted-secret-0123456789abcdefghijklmnop"
    args = [jira.url if a == "URL" else a.replace("PASTED", pasted) for a in argv]
    done = sites(env, *args, credential=TOKEN)
    assert done.exit_code == 2, done.output
    assert pasted not in done.output
    assert len(done.stderr.strip().splitlines()) == 1
    assert jira.requests == [] and jira.connections == 0


def test_8_1_rotate_set_credential_and_remove(env: dict[str, str], jira: FakeJira) -> None:
    created = added(env, jira)
    site_id = str(created["id"])
    rotated = sites(env, "rotate-secret", site_id, "--json")
    assert rotated.exit_code == 0, rotated.output
    shown = json.loads(rotated.stdout)
    assert set(shown) == {"id", "webhook_url", "webhook_secret"}
    (site,) = stored(env)
    assert site.webhook_secrets is not None
    assert (site.webhook_secrets.current, site.webhook_secrets.previous) == (
        shown["webhook_secret"], created["webhook_secret"])
    text = sites(env, "rotate-secret", site_id)
    assert text.exit_code == 0
    (site,) = stored(env)
    assert URL_SAFE_RUN.findall(text.stdout) == [site.webhook_secrets.current]  # type: ignore[union-attr]

    # Without --email, a Cloud site keeps its e-mail; the new token is tried first.
    jira.clear()
    refused = sites(env, "set-credential", site_id, credential="not-it-0123456789")
    assert refused.exit_code == 1 and "refused" in refused.stderr
    assert stored(env)[0].site_credential == ApiToken(EMAIL, TOKEN)
    changed = sites(env, "set-credential", site_id, "--email", EMAIL, "--json", stdin=TOKEN)
    assert changed.exit_code == 0, changed.output
    assert json.loads(changed.stdout)["status"] == "installed"
    assert TOKEN not in changed.output
    assert [r.verified for r in jira.requests] == [False, True]

    removed = sites(env, "remove", site_id)
    assert removed.exit_code == 0, removed.output
    (site,) = stored(env)
    assert site.status is TenantStatus.UNINSTALLED
    assert (site.webhook_secrets, site.site_credential) == (None, None)
    for command in ("rotate-secret", "set-credential"):
        assert sites(env, command, site_id, credential=TOKEN).exit_code == 1
    assert sites(env, "remove", "999999").exit_code == 1
    assert sites(env, "remove", "not-an-id").exit_code == 1
    assert "transport" in json.loads(CliRunner().invoke(
        main, ["tenants", "show", site_id, "--json"], env=env).stdout)
