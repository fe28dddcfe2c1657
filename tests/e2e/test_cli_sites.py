"""`sentry-jira sites …` as real processes on the database of a running `serve` (issue #13,
SPEC §8.1, §A, §3.1 `SENTRY_JIRA_JIRA_CREDENTIAL`): add (Cloud with an API token, Data Center
with a PAT), rotate-secret, set-credential, remove. The credential comes from the environment or
standard input, never argv; a credential typed on the command line is refused and never echoed.
Every secret the CLI prints is proven by signing a delivery that the running server accepts.

Written to the SPEC before the implementation landed. Assumptions where the SPEC is silent
(the coordinator fixes them if the implementation chose otherwise):
- Without `SENTRY_JIRA_JIRA_CREDENTIAL`, `sites add` and `sites set-credential` read the
  credential from standard input, with no extra flag.
- `sites add` prints the webhook URL and the secret (text mode: somewhere in stdout, the secret
  as one run of url-safe characters); `--json` prints the `POST /api/sites` answer.
- `sites rotate-secret <id> --json` prints an object with the new secret under `webhook_secret`.
- A credential on the command line, as an option or an extra argument, is a usage error (exit
  2) whose message repeats no typed value, like `orgs bind` (tests/cli/test_cli_admin_argv.py).
- A refused credential, or an unknown site id, exits 1 (§A).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from tests.e2e.test_story import cli_json, run_cli
from tests.support.builders import ADMIN_TOKEN
from tests.support.fake_jira import FakeJira
from tests.support.leak_scan import find_leaks
from tests.support.process import running_server
from tests.support.webhook_sites import (
    BASE,
    WEBHOOK_SECRET_SHAPE,
    admin_call,
    deliver,
    table_rows,
    webhook_env,
    webhook_path,
)
from tests.support.webhooks import issue_updated_body

pytestmark = pytest.mark.e2e

EMAIL = "jira-bot@example.com"
CREDENTIAL_ENV = "SENTRY_JIRA_JIRA_CREDENTIAL"
URL_SAFE_RUN = re.compile(r"[A-Za-z0-9_-]{43,}={0,2}")


@attrs.define(repr=False)  # a failing assertion must not print the secrets
class Served:
    url: str
    env: dict[str, str]
    database: Path
    log: Path
    outputs: list[str] = attrs.Factory(list)  # CLI output that must show no credential
    secrets: dict[str, str] = attrs.Factory(dict)
    deliveries: int = 0

    def remember(self, label: str, value: str) -> str:
        self.secrets[f"{label} #{len(self.secrets)}"] = value
        return value

    def credential(self, label: str) -> str:
        return self.remember(label, f"{label}-{secrets.token_urlsafe(24)}")

    def sites(self, *args: str, credential: str | None = None, stdin: str | None = None,
              shows_secret: bool = False) -> Any:
        env = dict(self.env)
        if credential is not None:
            env[CREDENTIAL_ENV] = credential
        done = run_cli(env, "sites", *args, stdin=stdin)
        if not shows_secret:
            self.outputs += [done.stdout, done.stderr]
        else:
            self.outputs.append(done.stderr)
        return done

    def verifies(self, site_id: int, secret: str) -> int:
        """200 when the server verifies a delivery signed with `secret`, else 401."""
        self.deliveries += 1
        body = issue_updated_body("status")
        body["changelog"] = {"id": f"cli-{self.deliveries}", "items": [
            {"field": "summary", "from": None, "fromString": "a", "to": None,
             "toString": f"b {self.deliveries}"}]}
        response = deliver(self.url, site_id, secret, body)
        assert response.status_code in (200, 401), response.text
        return response.status_code

    def site_id_of(self, base_url: str) -> int:
        (site,) = [t for t in cli_json(self.env, "tenants", "list")
                   if t["base_url"] == base_url and t["status"] == "installed"]
        assert site["transport"] == "webhook"
        return int(site["id"])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("cli-sites")
    log = directory / "serve.log"
    env = webhook_env(directory, worker=False)
    with running_server(env, log=log) as (url, _):
        told = Served(url=url, env=env, database=directory / "sentry-jira.db", log=log)
        yield told
    places = {"server log": log.read_bytes()}
    places.update({f"CLI output {n}": out.encode() for n, out in enumerate(told.outputs)})
    assert [f"{x.secret} in {x.place}" for x in find_leaks(told.secrets, places)] == []


def printed_secret(served: Served, site_id: int, stdout: str) -> str:
    """The one url-safe run in `stdout` that the server accepts as the site's secret."""
    working = [c for c in URL_SAFE_RUN.findall(stdout) if served.verifies(site_id, c) == 200]
    assert len(working) == 1, "the output does not show exactly one working secret"
    return served.remember("webhook secret", working[0])


def test_8_1_sites_add_cloud_reads_the_credential_from_the_environment_and_prints_url_and_secret(
    served: Served,
) -> None:
    token = served.credential("api-token")
    with FakeJira("unused-app-key") as jira:
        jira.add_cloud_token_site("cli-cloud", EMAIL, token)
        done = served.sites("add", jira.url, "--flavor", "cloud", "--email", EMAIL,
                            credential=token, shows_secret=True)
        assert done.returncode == 0, done.stderr
        assert token not in done.stdout + done.stderr
        site_id = served.site_id_of(jira.url)
        assert BASE + webhook_path(site_id) in done.stdout  # the exact URL to paste
        secret = printed_secret(served, site_id, done.stdout)
        assert WEBHOOK_SECRET_SHAPE.match(secret)
        # Tried once against Jira, as the token's owner.
        assert [(r.route, r.verified, r.principal) for r in jira.requests] == [
            ("myself", True, EMAIL)]
    # Shown once: nothing else shows it again.
    shown = [run_cli(served.env, "tenants", "show", str(site_id)),
             run_cli(served.env, "tenants", "list", "--json")]
    assert all(secret not in r.stdout + r.stderr for r in shown)
    assert secret not in admin_call(served.url, "GET", f"/api/tenants/{site_id}").text


def test_8_1_sites_add_data_center_reads_the_pat_from_stdin_and_json_parses(
    served: Served,
) -> None:
    pat = served.credential("pat")
    with FakeJira("unused-app-key") as jira:
        site = jira.add_data_center_site("cli-dc", pat, base_path="/jira")
        done = served.sites("add", site.base_url, "--flavor", "data-center", "--pat", "--json",
                            stdin=pat + "\n", shows_secret=True)
        assert done.returncode == 0, done.stderr
        assert pat not in done.stdout + done.stderr
        created = served_json(done.stdout)
        site_id = int(created["id"])
        assert {k: created[k] for k in ("transport", "flavor", "base_url", "webhook_url")} == {
            "transport": "webhook", "flavor": "data-center", "base_url": site.base_url,
            "webhook_url": BASE + webhook_path(site_id)}
        secret = served.remember("webhook secret", created["webhook_secret"])
        assert served.verifies(site_id, secret) == 200
        assert [(r.route, r.verified, r.principal, r.raw_path) for r in jira.requests] == [
            ("myself", True, "JIRAUSER10000", "/jira/rest/api/2/myself")]


def served_json(stdout: str) -> dict[str, Any]:
    value = json.loads(stdout)
    assert isinstance(value, dict)
    return value


def argv_mistakes(base_url: str, pasted: str) -> list[list[str]]:
    return [
        ["add", base_url, "--flavor", "cloud", "--email", EMAIL, "--credential", pasted],
        ["add", base_url, "--flavor", "cloud", "--email", EMAIL, f"--credential={pasted}"],
        ["add", base_url, "--flavor", "cloud", "--email", EMAIL, "--api-token", pasted],
        ["add", base_url, pasted, "--flavor", "cloud", "--email", EMAIL],
        ["add", base_url, "--flavor", "data-center", "--pat", pasted],
        ["add", base_url, "--flavor", "data-center", f"--pat={pasted}"],
        ["set-credential", "1", pasted],
        ["set-credential", "1", "--credential", pasted],
    ]


def test_8_1_a_credential_on_the_command_line_is_refused_never_echoed_and_nothing_stored(
    served: Served,
) -> None:
    pasted = served.credential("pasted")
    # The commands exist (§A: --help everywhere): the refusals below are about the credential.
    for command in ("add", "rotate-secret", "set-credential", "remove"):
        assert served.sites(command, "--help").returncode == 0, command
    with FakeJira("unused-app-key") as jira:
        jira.add_cloud_token_site("cli-argv", EMAIL, pasted)
        rows = table_rows(served.database)
        for case, argv in enumerate(argv_mistakes(jira.url, pasted)):
            done = served.sites(*argv)
            assert done.returncode == 2, (f"mistake #{case}", done.returncode)
            assert pasted not in done.stdout + done.stderr
            assert len(done.stderr.strip().splitlines()) == 1
        assert table_rows(served.database) == rows
        assert jira.connections == 0


def test_8_1_sites_add_with_a_credential_jira_refuses_exits_1_and_stores_nothing(
    served: Served,
) -> None:
    good = served.credential("good")
    wrong = served.credential("wrong")
    with FakeJira("unused-app-key") as jira:
        jira.add_cloud_token_site("cli-refused", EMAIL, good)
        rows = table_rows(served.database)
        done = served.sites("add", jira.url, "--flavor", "cloud", "--email", EMAIL,
                            credential=wrong)
        assert done.returncode == 1, done.stderr
        assert wrong not in done.stdout + done.stderr
        assert table_rows(served.database) == rows
        assert [(r.route, r.verified) for r in jira.requests] == [("myself", False)]
        empty = served.sites("add", jira.url, "--flavor", "cloud", "--email", EMAIL, stdin="")
        assert empty.returncode in (1, 2), empty.stderr  # no credential at all: refused
        assert table_rows(served.database) == rows


def basic_tokens(jira: FakeJira, since: int) -> list[str]:
    """The API tokens the app authenticated with (Basic email:token), from request `since`."""
    found = []
    for request in jira.requests[since:]:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        assert scheme.lower() == "basic"
        found.append(base64.b64decode(value).decode().partition(":")[2])
    return found


def test_8_1_rotate_secret_set_credential_and_remove(served: Served) -> None:
    first_token = served.credential("first-token")
    second_token = served.credential("second-token")
    with FakeJira("unused-app-key") as jira:
        site = jira.add_cloud_token_site("cli-life", EMAIL, first_token)
        added = served.sites("add", jira.url, "--flavor", "cloud", "--email", EMAIL, "--json",
                             credential=first_token, shows_secret=True)
        assert added.returncode == 0, added.stderr
        site_id = int(served_json(added.stdout)["id"])
        first = served.remember("webhook secret", served_json(added.stdout)["webhook_secret"])

        # rotate-secret: the new secret once, the old one kept for the hour.
        rotated = served.sites("rotate-secret", str(site_id), "--json", shows_secret=True)
        assert rotated.returncode == 0, rotated.stderr
        second = served.remember("webhook secret", served_json(rotated.stdout)["webhook_secret"])
        assert second != first and WEBHOOK_SECRET_SHAPE.match(second)
        assert (served.verifies(site_id, first), served.verifies(site_id, second)) == (200, 200)
        # A second rotation (text output) drops the first secret at once.
        again = served.sites("rotate-secret", str(site_id), shows_secret=True)
        assert again.returncode == 0, again.stderr
        third = printed_secret(served, site_id, again.stdout)
        assert third not in (first, second)
        assert (served.verifies(site_id, first), served.verifies(site_id, second)) == (401, 200)

        # set-credential: from the environment; then Jira is called with the new token only.
        site.api_tokens.append(attrs.evolve(site.api_tokens[0], token=second_token))
        changed = served.sites("set-credential", str(site_id), credential=second_token)
        assert changed.returncode == 0, changed.stderr
        assert second_token not in changed.stdout + changed.stderr
        site.api_tokens[:] = [t for t in site.api_tokens if t.token == second_token]
        bound = admin_call(served.url, "PUT", f"/api/tenants/{site_id}/orgs/acme", {
            "sentry_url": "http://127.0.0.1:9", "sentry_token": served.credential("sntrys")})
        assert bound.status_code == 200, bound.text
        site.add_project("10100", "OPS", "Operations")
        before = len(jira.requests)
        found = httpx.get(f"{served.url}/extensions/jira/search/acme/{site_id}/",
                          params={"field": "project", "query": "ops"}, timeout=15,
                          headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert found.status_code == 200, found.text
        assert found.json() == [{"label": "OPS - Operations", "value": "10100"}]
        assert set(basic_tokens(jira, before)) == {second_token}

        # remove: the site is uninstalled and every delivery is 401.
        removed = served.sites("remove", str(site_id))
        assert removed.returncode == 0, removed.stderr
        assert [served.verifies(site_id, s) for s in (first, second, third)] == [401] * 3
        shown = cli_json(served.env, "tenants", "show", str(site_id))
        assert (shown["status"], shown["transport"]) == ("uninstalled", "webhook")
        assert served.sites("remove", "999999").returncode == 1
        assert served.sites("rotate-secret", "999999").returncode == 1
