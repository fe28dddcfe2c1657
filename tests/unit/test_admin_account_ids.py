"""§A account mappings are keyed by a Jira user's identity: a Cloud `accountId` or, on Data
Center, the user's `key` (§8.1: `JIRAUSER10100` or a legacy key such as `john.smith`)."""

from __future__ import annotations

import pytest

from core.admin.validation import parse_account_id
from core.model.errors import BadRequest

ACCEPTED = [
    "5b10ac8d82e05b22cc7d4ef5",                           # Cloud, old form
    "712020:0c2d5a34-5b8e-4f0e-9a3c-1d2e3f4a5b6c",         # Cloud, current form
    "JIRAUSER10100",                                       # Data Center since 8.x
    "john.smith",                                          # Data Center, a legacy key
    "jane@corp.example",                                   # a legacy key that was an e-mail
    "o'neil",
    "müller",                                              # LDAP names are not all ASCII
    "first+last",
    "a" * 128,
]

REFUSED = [
    "",
    "a" * 129,
    "john smith",          # whitespace
    "john\tsmith",
    "john.smith\n",        # a trailing newline must not slip through `$`
    "a/b",                 # a path separator
    "a%2Fb",               # an encoded one
    "a\\b",
    "<script>",
    "a&b",
    'a"b',
    "a;b",
    "a?b",
    "a#b",
    "zero\u200bwidth",     # invisible characters
    "bell\x07",
]


@pytest.mark.parametrize("account_id", ACCEPTED)
def test_A_8_1_account_ids_and_data_center_keys_are_accepted_as_given(account_id: str) -> None:
    assert parse_account_id(account_id) == account_id


@pytest.mark.parametrize("account_id", REFUSED, ids=repr)
def test_A_other_account_ids_are_400_without_repeating_the_value(account_id: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_account_id(account_id)
    assert refused.value.detail.startswith("account_id must be a Jira account id or Data Center")
    if len(account_id) > 1:
        assert account_id not in refused.value.detail


@pytest.mark.parametrize("account_id", [None, 7, ["JIRAUSER10100"], {"key": "x"}], ids=repr)
def test_A_an_account_id_that_is_no_string_is_400(account_id: object) -> None:
    with pytest.raises(BadRequest):
        parse_account_id(account_id)
