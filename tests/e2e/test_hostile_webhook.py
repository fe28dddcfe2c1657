"""Hostile deliveries on the `webhook` transport's route over real HTTP (issue #13, SPEC §8.0,
§8.1): every signature refusal, every site-id refusal and the transport checks of §5, against a
real `sentry-jira serve`, each answered with its exact status and leaving every table unchanged
(read-only snapshot) and both fake Jiras untouched.

One server for the module, without a worker (stable snapshots), on each engine (SQLite, then a
fresh PostgreSQL database, §9): a Cloud site and a Data Center site registered over the admin
API, a third site registered and removed, and a Connect tenant. The last test checks that every
401 carried the same detail (a refusal tells an attacker nothing about which check failed), and
the fixture scans the log, every answer and the stored rows for every secret the suite used.

Written to the SPEC before the implementation landed. Assumptions where the SPEC is silent:
- A non-integer site id may be 401 or 404; it must never reach a site (a full-width digit is
  not the site whose id is that digit).
- `DELETE /api/sites/{id}` answers 200 or 204.
- The transport checks run before the verifier: GET → 405 with `Allow` naming POST, a body
  declared over `SENTRY_JIRA_MAX_BODY_BYTES` → 413, a non-JSON content type → 415.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import httpx
import pytest

from tests.e2e.test_hostile import assert_error, random_secret
from tests.support.engines import Storage, Where, stored_bytes, table_rows
from tests.support.fake_jira import FakeJira
from tests.support.hub_signature import data_center_body, hub_signature
from tests.support.leak_scan import find_leaks
from tests.support.process import running_server
from tests.support.sync_e2e import install
from tests.support.webhook_sites import (
    SITES,
    admin_call,
    site_request,
    webhook_env,
    webhook_path,
)
from tests.support.webhooks import issue_updated_body, signed_delivery

pytestmark = pytest.mark.e2e

EMAIL = "jira-bot@example.com"
LIMIT = 65_536  # SENTRY_JIRA_MAX_BODY_BYTES of this server


@attrs.define(repr=False)  # a failing assertion must not print the secrets it holds
class Hostile:
    url: str
    database: Where
    jiras: tuple[FakeJira, ...]
    client: httpx.Client
    cloud_id: int = 0
    cloud_secret: str = ""
    dc_id: int = 0
    dc_secret: str = ""
    removed_id: int = 0
    removed_secret: str = ""
    connect_id: int = 0
    connect_secret: str = ""
    secrets: dict[str, str] = attrs.Factory(dict)
    bodies: list[bytes] = attrs.Factory(list)
    details: dict[str, str] = attrs.Factory(dict)  # case -> the detail of its 401
    sent: int = 0

    def remember(self, label: str, value: str) -> str:
        self.secrets[f"{label} #{len(self.secrets)}"] = value
        return value

    def body(self) -> bytes:
        """A fresh relevant delivery (W4): accepted, it would be recorded and synced."""
        self.sent += 1
        body = issue_updated_body("status")
        body["changelog"]["id"] = f"hostile-webhook-{self.sent}"
        return json.dumps(body).encode()

    def post(self, site_id: int | str, raw: bytes, headers: list[tuple[str, str]],
             method: str = "POST") -> httpx.Response:
        response = self.client.request(method, webhook_path(site_id), content=raw,
                                       headers=headers)
        self.bodies.append(response.content)
        return response

    def egress(self) -> list[tuple[int, int]]:
        return [(jira.connections, len(jira.requests)) for jira in self.jiras]


def json_type() -> tuple[str, str]:
    return ("Content-Type", "application/json")


def signed(raw: bytes, secret: str) -> list[tuple[str, str]]:
    return [json_type(), ("X-Hub-Signature", hub_signature(raw, secret))]


@contextlib.contextmanager
def nothing_recorded(h: Hostile) -> Iterator[None]:
    rows, egress = table_rows(h.database), h.egress()
    yield
    assert table_rows(h.database) == rows, "a refused delivery changed the database"
    assert h.egress() == egress, "Jira was called for a refused delivery"


def register(h: Hostile, request: dict[str, Any]) -> tuple[int, str]:
    response = admin_call(h.url, "POST", SITES, request)
    assert response.status_code == 201, response.text
    created = response.json()
    return int(created["id"]), h.remember("webhook secret", created["webhook_secret"])


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory, module_storage: Storage) -> Iterator[Hostile]:
    directory = tmp_path_factory.mktemp("hostile-webhook")
    log = directory / "serve.log"
    env = webhook_env(directory, worker=False, SENTRY_JIRA_MAX_BODY_BYTES=str(LIMIT),
                      **module_storage.env(directory))
    with (
        FakeJira("unused-app-key") as cloud_jira,
        FakeJira("unused-app-key") as dc_jira,
        FakeJira("unused-app-key") as removed_jira,
        running_server(env, log=log) as (url, _),
        httpx.Client(base_url=url, timeout=15, follow_redirects=False) as client,
    ):
        told = Hostile(url=url, database=module_storage.where(directory),
                       jiras=(cloud_jira, dc_jira, removed_jira), client=client)
        token = told.remember("api token", random_secret("api-token"))
        pat = told.remember("pat", random_secret("pat"))
        removed_token = told.remember("api token", random_secret("removed-token"))
        cloud_jira.add_cloud_token_site("hostile-cloud", EMAIL, token)
        dc_jira.add_data_center_site("hostile-dc", pat, base_path="/jira")
        removed_jira.add_cloud_token_site("hostile-removed", EMAIL, removed_token)
        told.cloud_id, told.cloud_secret = register(
            told, site_request("cloud", cloud_jira.url, token, EMAIL))
        told.dc_id, told.dc_secret = register(
            told, site_request("data-center", dc_jira.url + "/jira", pat))
        told.removed_id, told.removed_secret = register(
            told, site_request("cloud", removed_jira.url, removed_token, EMAIL))
        gone = admin_call(url, "DELETE", f"{SITES}/{told.removed_id}")
        assert gone.status_code in (200, 204), gone.text
        told.connect_secret = told.remember("connect secret", random_secret("connect"))
        told.connect_id = install(env, "hostile-webhook-connect", told.connect_secret,
                                  "https://acme.atlassian.net")
        yield told
    places = {"server log": log.read_bytes()}
    places.update({f"response {n}": body for n, body in enumerate(told.bodies)})
    places.update(stored_bytes(told.database, directory))
    assert [f"{x.secret} in {x.place}" for x in find_leaks(told.secrets, places)] == []


# -- the route works: the refusals below are refusals, not a missing route -----------------


def test_8_1_a_correctly_signed_delivery_is_accepted_on_both_flavors(h: Hostile) -> None:
    raw = h.body()
    accepted = h.post(h.cloud_id, raw, signed(raw, h.cloud_secret))
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "accepted"
    dc = json.dumps(data_center_body()).encode()  # Data Center: no identifier header
    assert h.post(h.dc_id, dc, signed(dc, h.dc_secret)).status_code == 202


def test_8_1_upper_case_hex_is_accepted(h: Hostile) -> None:
    raw = h.body()
    upper = "sha256=" + hub_signature(raw, h.cloud_secret).removeprefix("sha256=").upper()
    response = h.post(h.cloud_id, raw, [json_type(), ("X-Hub-Signature", upper)])
    assert response.status_code == 202, response.text


# -- §8.1 signature refusals ---------------------------------------------------------------


def digest(raw: bytes, secret: str, algorithm: str = "sha256") -> str:
    return hmac.new(secret.encode(), raw, getattr(hashlib, algorithm)).hexdigest()


Headers = Callable[[Hostile, bytes], list[tuple[str, str]]]


def header(value: Callable[[Hostile, bytes], str]) -> Headers:
    return lambda h, raw: [json_type(), ("X-Hub-Signature", value(h, raw))]


SIGNATURE_REFUSALS: dict[str, Headers] = {
    "no X-Hub-Signature": lambda h, raw: [json_type()],
    "empty": header(lambda h, raw: ""),
    "sha1=": header(lambda h, raw: "sha1=" + digest(raw, h.cloud_secret, "sha1")),
    "sha512=": header(lambda h, raw: "sha512=" + digest(raw, h.cloud_secret, "sha512")),
    "no method prefix": header(lambda h, raw: digest(raw, h.cloud_secret)),
    "63 hex digits": header(lambda h, raw: "sha256=" + digest(raw, h.cloud_secret)[:63]),
    "65 hex digits": header(lambda h, raw: "sha256=" + digest(raw, h.cloud_secret) + "0"),
    "not hex": header(lambda h, raw: "sha256=" + "g" * 64),
    "a space inside": header(lambda h, raw: "sha256= " + digest(raw, h.cloud_secret)),
    "two signatures in one header": header(
        lambda h, raw: f"{hub_signature(raw, h.cloud_secret)}, {hub_signature(raw, h.cloud_secret)}"
    ),
    "two valid X-Hub-Signature headers": lambda h, raw: [
        json_type(),
        ("X-Hub-Signature", hub_signature(raw, h.cloud_secret)),
        ("X-Hub-Signature", hub_signature(raw, h.cloud_secret)),
    ],
    "a wrong one and a valid one": lambda h, raw: [
        json_type(),
        ("X-Hub-Signature", "sha256=" + "0" * 64),
        ("X-Hub-Signature", hub_signature(raw, h.cloud_secret)),
    ],
    "another site's secret": header(lambda h, raw: hub_signature(raw, h.dc_secret)),
    "the removed site's secret": header(lambda h, raw: hub_signature(raw, h.removed_secret)),
    "signed over another body": header(lambda h, raw: hub_signature(raw + b" ", h.cloud_secret)),
    "a Connect JWT instead": lambda h, raw: [
        *signed_delivery("hostile-webhook-connect", h.connect_secret, raw)[0].items()],
}


@pytest.mark.parametrize("case", list(SIGNATURE_REFUSALS))
def test_8_1_signature_refusals_are_401_and_nothing_is_recorded(h: Hostile, case: str) -> None:
    raw = h.body()
    with nothing_recorded(h):
        response = h.post(h.cloud_id, raw, SIGNATURE_REFUSALS[case](h, raw))
        assert_error(response, 401)
    h.details[case] = response.json()["detail"]


# -- §8.1 site refusals: unknown, removed, another transport --------------------------------


SITE_REFUSALS: dict[str, Callable[[Hostile], tuple[int, str]]] = {
    "an unknown site id": lambda h: (999_999, h.cloud_secret),
    "a removed site, its own secret": lambda h: (h.removed_id, h.removed_secret),
    "a Connect tenant, its shared secret as the key": lambda h: (h.connect_id, h.connect_secret),
    "a Connect tenant, a webhook site's secret": lambda h: (h.connect_id, h.cloud_secret),
}


@pytest.mark.parametrize("case", list(SITE_REFUSALS))
def test_8_1_site_refusals_are_the_same_401_and_nothing_is_recorded(h: Hostile, case: str
                                                                    ) -> None:
    site_id, secret = SITE_REFUSALS[case](h)
    raw = h.body()
    with nothing_recorded(h):
        response = h.post(site_id, raw, signed(raw, secret))
        assert_error(response, 401)
    h.details[case] = response.json()["detail"]


def full_width(digits: int) -> str:
    """`12` as `１２`: Python's int() reads these as 12; a site id must not."""
    return "".join(chr(0xFF10 + int(d)) for d in str(digits))


NOT_INTEGERS: dict[str, Callable[[Hostile], str]] = {
    "letters": lambda h: "abc",
    "a decimal": lambda h: f"{h.cloud_id}.0",
    "negative": lambda h: "-1",
    "hex": lambda h: f"0x{h.cloud_id:x}",
    "full-width digits of a real id": lambda h: full_width(h.cloud_id),
    "underscore": lambda h: f"{h.cloud_id}_",
    "huge": lambda h: "9" * 40,
}


@pytest.mark.parametrize("case", list(NOT_INTEGERS))
def test_8_1_a_non_integer_site_id_is_401_or_404_and_reaches_no_site(h: Hostile, case: str
                                                                    ) -> None:
    raw = h.body()
    with nothing_recorded(h):
        response = h.post(NOT_INTEGERS[case](h), raw, signed(raw, h.cloud_secret))
        assert response.status_code in (401, 404), response.text
        assert set(response.json()) == {"detail"}


# -- §8.0 transport checks before the verifier ----------------------------------------------


def test_8_0_get_is_405_with_allow(h: Hostile) -> None:
    with nothing_recorded(h):
        response = h.post(h.cloud_id, b"", [], method="GET")
        assert_error(response, 405)
    assert "POST" in response.headers["allow"]


def test_8_0_a_body_declared_over_the_limit_is_413(h: Hostile) -> None:
    raw = b'{"pad": "' + b"x" * LIMIT + b'"}'
    with nothing_recorded(h):
        assert_error(h.post(h.cloud_id, raw, signed(raw, h.cloud_secret)), 413)


def test_8_0_a_body_not_declared_json_is_415(h: Hostile) -> None:
    raw = h.body()
    headers = [("Content-Type", "text/plain"), ("X-Hub-Signature", hub_signature(raw,
                                                                               h.cloud_secret))]
    with nothing_recorded(h):
        assert_error(h.post(h.cloud_id, raw, headers), 415)


def test_zz_8_1_every_401_tells_the_same_thing(h: Hostile) -> None:
    """No refusal reveals which check failed: missing, malformed, wrong, unknown site."""
    assert len(h.details) == len(SIGNATURE_REFUSALS) + len(SITE_REFUSALS)
    assert len(set(h.details.values())) == 1, sorted(set(h.details.values()))
