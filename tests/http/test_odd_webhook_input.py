"""Issue #11 items 6 and 7 through HTTP: odd but signed input is a 4xx, never a 500 (W2, §4.2),
and a recorded delivery keeps only bounded fields (longer → 400, nothing recorded)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from core.describe import ISSUE_UPDATED_PATH as PATH
from tests.http.test_issue_updated import CLIENT, SECRET, deliveries, post, service  # noqa: F401
from tests.http.test_lifecycle import (  # noqa: F401
    UNINSTALLED,
    Site,
    a_lifecycle_token,
    key_server,
    site,
    uninstall_body,
)
from tests.support.webhooks import issue_updated_body, signed_delivery


def status_body(**changes: Any) -> dict[str, Any]:
    return issue_updated_body("status", **changes)


# -- item 6: a changelog item whose `field` is a list or an object --------------------------


@pytest.mark.parametrize("field", [["status"], {"name": "status"}, [], {}])
async def test_W2_a_list_or_object_field_beside_a_relevant_item_is_recorded_without_it(
    service: Any, field: Any  # noqa: F811
) -> None:
    container, client = service
    body = status_body()
    body["changelog"]["items"].append({"field": field, "to": "1"})
    headers, raw = signed_delivery(CLIENT, SECRET, body, delivery_id="d-odd")
    response = await post(client, headers, raw)
    assert response.status_code == 202, response.text
    [row] = deliveries(container)
    assert b'"to":"1"' not in bytes(row["body"])  # the odd item is not what the worker reads


@pytest.mark.parametrize("field", [["status"], {"name": "status"}])
async def test_W4_only_list_or_object_fields_are_ignored_not_500(
    service: Any, field: Any  # noqa: F811
) -> None:
    container, client = service
    body = status_body(changelog={"id": "1", "items": [{"field": field}]})
    headers, raw = signed_delivery(CLIENT, SECRET, body)
    response = await post(client, headers, raw)
    assert (response.status_code, response.json()) == (200, {"status": "ignored"})
    assert deliveries(container) == []


# -- item 6: §4.2 token lifetime and an `exp` that cannot be a date ---------------------------


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": 10**20},
        {"exp": 1e300},
        {"lifetime": 3601},
        {"lifetime": 86_400 * 365},
    ],
    ids=["exp-10e20", "exp-1e300", "3601s", "a-year"],
)
async def test_4_2_a_webhook_token_living_over_an_hour_is_401_and_nothing_recorded(
    service: Any, claims: dict[str, Any]  # noqa: F811
) -> None:
    container, client = service
    headers, raw = signed_delivery(CLIENT, SECRET, **claims)
    response = await post(client, headers, raw)
    assert response.status_code == 401, response.text
    assert set(response.json()) == {"detail"}
    assert deliveries(container) == []


async def test_4_2_a_webhook_token_of_exactly_one_hour_is_accepted(
    service: Any,  # noqa: F811
) -> None:
    _, client = service
    headers, raw = signed_delivery(CLIENT, SECRET, lifetime=3600)
    assert (await post(client, headers, raw)).status_code == 202


def _lifetime_claims(kind: str) -> dict[str, Any]:
    iat = int(time.time())
    return {"exp-10e20": {"exp": 10**20}, "exp-1e300": {"exp": 1e300},
            "3601s": {"iat": iat, "exp": iat + 3601}}[kind]


@pytest.mark.parametrize("kind", ["exp-10e20", "exp-1e300", "3601s"])
async def test_4_2_a_lifecycle_token_living_over_an_hour_is_401_and_nothing_stored(
    site: Site, kind: str  # noqa: F811
) -> None:
    response = await site.install(a_lifecycle_token(**_lifetime_claims(kind)))
    assert response.status_code == 401, response.text
    assert await site.rows() == []
    assert await site.rows("used_lifecycle_tokens") == []
    gone = await site.uninstall(
        a_lifecycle_token(UNINSTALLED, **_lifetime_claims(kind)), uninstall_body())
    assert gone.status_code == 401, gone.text


async def test_4_2_a_lifecycle_token_of_exactly_one_hour_installs(site: Site) -> None:  # noqa: F811
    iat = int(time.time())
    assert (await site.install(a_lifecycle_token(iat=iat, exp=iat + 3600))).status_code == 204


# -- item 7: bounded records ---------------------------------------------------------------


def _set(body: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = body
    for name in parents:
        if isinstance(node, list):
            node = node[int(name)]
        else:
            if node.get(name) is None:
                node[name] = {}
            node = node[name]
    node[last] = value


# (path in the body, its limit); `changelog.items.1` is the status item of the fixture.
BOUNDS = [
    ("issue.id", 64),
    ("issue.key", 255),
    ("issue.fields.project.id", 64),
    ("issue.fields.project.key", 255),
    ("issue.fields.updated", 64),
    ("issue.fields.assignee.accountId", 128),
    ("issue.fields.assignee.emailAddress", 255),
    ("issue.fields.assignee.displayName", 255),
    ("timestamp", 64),
    ("changelog.id", 64),
    ("changelog.items.1.from", 128),
    ("changelog.items.1.to", 128),
    ("changelog.items.1.fromString", 255),
    ("changelog.items.1.toString", 255),
]


@pytest.mark.parametrize(("path", "limit"), BOUNDS, ids=[p for p, _ in BOUNDS])
async def test_bounded_records_one_character_over_is_400_and_nothing_recorded(
    service: Any, path: str, limit: int  # noqa: F811
) -> None:
    container, client = service
    body = status_body()
    _set(body, path, "x" * (limit + 1))
    headers, raw = signed_delivery(CLIENT, SECRET, body)
    response = await post(client, headers, raw)
    assert response.status_code == 400, response.text
    assert path.split(".")[-1] in response.json()["detail"]
    assert deliveries(container) == []


async def test_bounded_records_every_field_at_its_limit_is_recorded(
    service: Any,  # noqa: F811
) -> None:
    container, client = service
    body = status_body()
    for path, limit in BOUNDS:
        _set(body, path, "x" * limit)
    headers, raw = signed_delivery(CLIENT, SECRET, body, delivery_id="i" * 64)
    assert (await post(client, headers, raw)).status_code == 202
    [row] = deliveries(container)
    assert row["delivery_id"] == "i" * 64 and row["issue_key"] == "x" * 255


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("timestamp", 10**65),  # a number is bounded by its digits
        ("issue.fields.updated", ["2026-01-01"]),
        ("issue.fields.project.id", {"id": "1"}),
        ("changelog.items.1.to", ["10101"]),
        ("issue.fields.assignee", [[[[]]]]),
    ],
    ids=["huge-number", "list-updated", "object-project-id", "list-to", "list-assignee"],
)
async def test_bounded_records_a_list_object_or_huge_number_is_400_and_nothing_recorded(
    service: Any, path: str, value: Any  # noqa: F811
) -> None:
    container, client = service
    body = status_body()
    _set(body, path, value)
    headers, raw = signed_delivery(CLIENT, SECRET, body)
    assert (await post(client, headers, raw)).status_code == 400
    assert deliveries(container) == []


async def test_bounded_records_a_delivery_id_over_64_is_400_and_nothing_recorded(
    service: Any,  # noqa: F811
) -> None:
    container, client = service
    headers, raw = signed_delivery(CLIENT, SECRET, delivery_id="i" * 65)
    assert (await post(client, headers, raw, PATH)).status_code == 400
    assert deliveries(container) == []
