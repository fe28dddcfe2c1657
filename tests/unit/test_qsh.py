"""Query string hash (qsh) canonicalisation, SPEC §4.1.

Expected canonical strings here are written out by hand from the SPEC rules;
they are never produced by calling the code under test.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jwt
import pytest

from core.connect.qsh import (
    base_path_of,
    canonical_query,
    canonical_request,
    canonical_uri,
    query_string_hash,
)

# tests/unit/test_qsh.py -> repo root is parents[2]; "shared" sits beside it.
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
VECTORS_FILE = SHARED / "vectors" / "qsh-modern.json"

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _load() -> dict[str, Any]:
    with VECTORS_FILE.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


DATA = _load()
SECRET: str = DATA["secret"]
ALL_VECTORS: list[dict[str, Any]] = DATA["vectors"]
REQUEST_VECTORS = [v for v in ALL_VECTORS if "method" in v]
CONTEXT_VECTORS = [v for v in ALL_VECTORS if "method" not in v]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _decode_token(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token, SECRET, algorithms=["HS256"], options={"verify_exp": False}
    )
    return claims


# --------------------------------------------------------------------------
# Shared vectors
# --------------------------------------------------------------------------


def test_vectors_file_holds_request_and_context_vectors() -> None:
    assert len(ALL_VECTORS) == len(REQUEST_VECTORS) + len(CONTEXT_VECTORS)
    assert REQUEST_VECTORS, "no request vectors found"
    assert CONTEXT_VECTORS, "no context-JWT vector found"


@pytest.mark.parametrize("vector", REQUEST_VECTORS, ids=lambda v: v["name"])
def test_qsh_vector_canonical_request_matches(vector: dict[str, Any]) -> None:
    path, _, query = vector["url"].partition("?")
    base = base_path_of(vector["base"])
    assert canonical_request(vector["method"], path, query, base) == vector["canonical"]


@pytest.mark.parametrize("vector", REQUEST_VECTORS, ids=lambda v: v["name"])
def test_qsh_vector_hash_matches(vector: dict[str, Any]) -> None:
    path, _, query = vector["url"].partition("?")
    base = base_path_of(vector["base"])
    assert _sha(vector["canonical"]) == vector["qsh"]
    assert query_string_hash(vector["method"], path, query, base) == vector["qsh"]


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=lambda v: v["name"])
def test_qsh_vector_token_is_hs256_over_secret_with_vector_claims(
    vector: dict[str, Any],
) -> None:
    claims = _decode_token(vector["token"])
    assert jwt.get_unverified_header(vector["token"])["alg"] == "HS256"
    assert claims == vector["claims"]
    if "qsh" in vector:
        assert claims["qsh"] == vector["qsh"]


@pytest.mark.parametrize("vector", CONTEXT_VECTORS, ids=lambda v: v["name"])
def test_qsh_context_jwt_is_literal_and_no_request_hashes_to_it(
    vector: dict[str, Any],
) -> None:
    claims = _decode_token(vector["token"])
    assert claims["qsh"] == "context-qsh"
    # A real request always hashes to 64 hex digits, never the literal.
    for request in REQUEST_VECTORS:
        path, _, query = request["url"].partition("?")
        qsh = query_string_hash(request["method"], path, query, base_path_of(request["base"]))
        assert qsh != "context-qsh"
        assert HEX64.match(qsh)
    assert query_string_hash("GET", "", "") != "context-qsh"


def test_qsh_tampered_token_is_rejected_by_signature() -> None:
    token = REQUEST_VECTORS[0]["token"]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            token,
            SECRET + "x",
            algorithms=["HS256"],
            options={"verify_exp": False},
        )


# --------------------------------------------------------------------------
# CANONICAL_QUERY
# --------------------------------------------------------------------------


def test_qsh_no_parameters_give_empty_query() -> None:
    assert canonical_query("") == ""


def test_qsh_space_percent_encoded_is_encoded_as_percent20() -> None:
    assert canonical_query("q=a%20b") == "q=a%20b"


def test_qsh_plus_is_form_decoded_to_space_then_encoded_as_percent20() -> None:
    assert canonical_query("q=a+b") == "q=a%20b"
    assert canonical_query("a+b=1") == "a%20b=1"


def test_qsh_literal_plus_sent_as_percent2b_stays_percent2b() -> None:
    assert canonical_query("q=a%2Bb") == "q=a%2Bb"
    assert canonical_query("q=a%2bb") == "q=a%2Bb"


def test_qsh_star_is_encoded_as_percent2a() -> None:
    assert canonical_query("q=a*b") == "q=a%2Ab"
    assert canonical_query("q=a%2ab") == "q=a%2Ab"


def test_qsh_unreserved_characters_are_left_bare() -> None:
    assert canonical_query("q=~") == "q=~"
    assert canonical_query("q=%7E") == "q=~"
    assert canonical_query("q=%41z%30-._~") == "q=Az0-._~"


def test_qsh_reserved_characters_are_percent_encoded_with_uppercase_hex() -> None:
    assert canonical_query("redirect=https://x.y/?a=1") == "redirect=https%3A%2F%2Fx.y%2F%3Fa%3D1"
    assert canonical_query("q=!'()") == "q=%21%27%28%29"


def test_qsh_repeated_keys_are_grouped_and_sorted_by_value() -> None:
    assert canonical_query("a=2&a=1") == "a=1,2"
    assert canonical_query("b=x&a=2&c=y&a=1&a=10") == "a=1,10,2&b=x&c=y"


def test_qsh_repeated_identical_values_are_all_kept() -> None:
    assert canonical_query("a=1&a=1") == "a=1,1"


def test_qsh_group_values_sort_by_decoded_not_encoded_string() -> None:
    # decoded "z" < "{"; encoded "%7B" < "z" -- the decoded order wins.
    assert canonical_query("a=%7B&a=z") == "a=z,%7B"
    # decoded "z" < "é"; encoded "%C3%A9" < "z".
    assert canonical_query("a=%C3%A9&a=z") == "a=z,%C3%A9"


def test_qsh_names_that_decode_alike_form_one_group() -> None:
    assert canonical_query("a+b=2&a%20b=1") == "a%20b=1,2"


def test_qsh_empty_value_keeps_the_name_with_empty_value() -> None:
    assert canonical_query("a=&b") == "a=&b="


def test_qsh_key_without_equals_has_empty_value() -> None:
    assert canonical_query("flag") == "flag="
    assert canonical_query("flag&flag=x") == "flag=,x"


def test_qsh_empty_pieces_are_skipped() -> None:
    assert canonical_query("&&a=1&") == "a=1"
    assert canonical_query("&") == ""
    assert canonical_query("a=1&&b=2") == "a=1&b=2"


def test_qsh_piece_with_only_equals_is_an_empty_name_not_an_empty_piece() -> None:
    assert canonical_query("=x&a=1") == "=x&a=1"


def test_qsh_jwt_parameter_is_dropped() -> None:
    assert canonical_query("jwt=abc.def.ghi&a=1") == "a=1"
    assert canonical_query("jwt") == ""
    assert canonical_query("jwt=1&jwt=2") == ""


def test_qsh_jwt_is_dropped_by_decoded_name() -> None:
    assert canonical_query("jw%74=abc&a=1") == "a=1"


def test_qsh_jwt_match_is_case_sensitive() -> None:
    assert canonical_query("JWT=x&Jwt=y") == "JWT=x&Jwt=y"


def test_qsh_utf8_percent_escapes_stay_uppercase_utf8_escapes() -> None:
    assert canonical_query("q=%C3%A9") == "q=%C3%A9"
    assert canonical_query("q=%c3%a9") == "q=%C3%A9"


def test_qsh_raw_non_ascii_in_query_is_encoded_as_utf8() -> None:
    assert canonical_query("q=é") == "q=%C3%A9"
    assert canonical_query("é=1") == "%C3%A9=1"
    assert canonical_query("q=\U0001f600") == "q=%F0%9F%98%80"


def test_qsh_items_sort_by_encoded_name_uppercase_before_lowercase() -> None:
    assert canonical_query("b=1&B=2&a=3&A=4") == "A=4&B=2&a=3&b=1"


def test_qsh_items_sort_by_encoded_not_decoded_name() -> None:
    # decoded "z" < "{"; encoded "%7B" < "z" -- the encoded order wins.
    assert canonical_query("z=1&%7B=2") == "%7B=2&z=1"
    assert canonical_query("a_b=1&a=2&a-b=3") == "a=2&a-b=3&a_b=1"


def test_qsh_value_splits_at_first_equals_only() -> None:
    assert canonical_query("a=b=c") == "a=b%3Dc"
    assert canonical_query("a==") == "a=%3D"


def test_qsh_comma_inside_a_value_is_encoded_so_it_cannot_join_values() -> None:
    assert canonical_query("a=x,y") == "a=x%2Cy"
    assert canonical_query("a=x%2Cy&a=z") == "a=x%2Cy,z"


def test_qsh_encoded_ampersand_in_value_is_data_not_separator() -> None:
    assert canonical_query("a=x%26b%3D1") == "a=x%26b%3D1"


def test_qsh_invalid_percent_escape_is_kept_literally_as_percent25() -> None:
    assert canonical_query("q=%zz") == "q=%25zz"
    assert canonical_query("q=100%") == "q=100%25"
    assert canonical_query("q=%4") == "q=%254"


def test_qsh_invalid_utf8_escapes_round_trip_to_the_same_bytes() -> None:
    assert canonical_query("q=%FF") == "q=%FF"
    assert canonical_query("q=%C3") == "q=%C3"
    assert canonical_query("q=%ff&q=%fe") == "q=%FE,%FF"
    # Distinct invalid bytes must not collapse into one canonical string.
    assert canonical_query("q=%FF") != canonical_query("q=%FE")


def test_qsh_lone_surrogate_input_does_not_raise() -> None:
    # U+D800 is not a surrogateescape byte; it gets its surrogatepass bytes.
    assert canonical_query("q=\ud800") == "q=%ED%A0%80"
    assert HEX64.match(query_string_hash("GET", "/\ud800", "q=\ud800"))


def test_qsh_query_string_with_leading_question_mark_is_not_stripped() -> None:
    # The caller passes the query without "?"; nothing is normalised.
    assert canonical_query("?a=1") == "%3Fa=1"


# --------------------------------------------------------------------------
# CANONICAL_URI
# --------------------------------------------------------------------------


def test_qsh_empty_path_becomes_slash() -> None:
    assert canonical_uri("") == "/"
    assert canonical_uri("/") == "/"


def test_qsh_one_trailing_slash_is_removed_from_path() -> None:
    assert canonical_uri("/a/b/") == "/a/b"
    assert canonical_uri("/a//") == "/a/"
    assert canonical_uri("//") == "/"


def test_qsh_ampersand_in_path_becomes_percent26() -> None:
    assert canonical_uri("/a&b/c&&d") == "/a%26b/c%26%26d"


def test_qsh_percent_encoded_reserved_characters_in_path_are_left_as_is() -> None:
    assert canonical_uri("/a%2Fb") == "/a%2Fb"
    assert canonical_uri("/a%2fb") == "/a%2fb"
    assert canonical_uri("/a%20b/%7Euser") == "/a%20b/%7Euser"
    assert canonical_uri("/a+b") == "/a+b"


def test_qsh_path_dot_segments_and_double_slashes_are_not_normalised() -> None:
    assert canonical_uri("/a/../b//c") == "/a/../b//c"


def test_qsh_base_path_is_stripped_at_a_segment_boundary() -> None:
    base = base_path_of("https://app.example.com/jira")
    assert base == "/jira"
    assert canonical_uri("/jira/installed", base) == "/installed"
    assert canonical_uri("/jira", base) == "/"
    assert canonical_uri("/jira/", base) == "/"
    assert canonical_uri("/jira/a/b/", base) == "/a/b"


def test_qsh_base_path_is_not_stripped_inside_a_segment() -> None:
    assert canonical_uri("/jiraz/x", "/jira") == "/jiraz/x"
    assert canonical_uri("/jirax", "/jira") == "/jirax"


def test_qsh_base_path_is_stripped_only_as_a_prefix() -> None:
    assert canonical_uri("/x/jira/y", "/jira") == "/x/jira/y"


def test_qsh_base_path_match_is_case_sensitive() -> None:
    assert canonical_uri("/JIRA/x", "/jira") == "/JIRA/x"


def test_qsh_base_path_with_trailing_slash_strips_the_same() -> None:
    assert canonical_uri("/jira/installed", "/jira/") == "/installed"
    assert canonical_uri("/jira/installed", base_path_of("https://h/jira/")) == ("/installed")


def test_qsh_empty_or_root_base_path_strips_nothing() -> None:
    assert canonical_uri("/installed", "") == "/installed"
    assert canonical_uri("/installed", "/") == "/installed"
    assert canonical_uri("/", "/") == "/"


def test_qsh_nested_base_path_is_stripped_whole() -> None:
    assert canonical_uri("/a/b/c", "/a/b") == "/c"
    assert canonical_uri("/a/bc", "/a/b") == "/a/bc"


# --------------------------------------------------------------------------
# base_path_of
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://app.example.com/jira/", "/jira"),
        ("https://app.example.com/jira", "/jira"),
        ("https://app.example.com/a/b/", "/a/b"),
        ("https://app.example.com", ""),
        ("https://app.example.com/", ""),
        ("https://app.example.com:8443/jira?x=1#f", "/jira"),
        ("https://example.atlassian.net/wiki", "/wiki"),
        ("", ""),
    ],
)
def test_qsh_base_path_of_returns_url_path_without_trailing_slash(
    base_url: str, expected: str
) -> None:
    assert base_path_of(base_url) == expected


# --------------------------------------------------------------------------
# canonical_request / query_string_hash
# --------------------------------------------------------------------------


def test_qsh_method_is_upper_cased() -> None:
    assert canonical_request("get", "/x", "") == "GET&/x&"
    assert canonical_request("Post", "/x", "") == "POST&/x&"


def test_qsh_canonical_request_joins_method_uri_and_query() -> None:
    assert (
        canonical_request("post", "/jira/issue-updated/", "b=2&a=1&jwt=xyz", "/jira")
        == "POST&/issue-updated&a=1&b=2"
    )


def test_qsh_ampersand_in_path_cannot_shift_into_the_query_part() -> None:
    assert canonical_request("GET", "/a&b", "c=1") == "GET&/a%26b&c=1"


def test_qsh_hash_is_lowercase_hex_sha256_of_canonical_request() -> None:
    qsh = query_string_hash("get", "/jira/installed/", "jwt=t&z=1&a=2", "/jira")
    assert qsh == _sha("GET&/installed&a=2&z=1")
    assert HEX64.match(qsh)


def test_qsh_hash_of_installed_matches_hand_written_canonical() -> None:
    assert query_string_hash("POST", "/installed", "") == _sha("POST&/installed&")
    assert query_string_hash("POST", "/installed", "") == (
        "4a2e1de8ca74e6cafe8862d332fa3ac7a8e51e692bc6d798ea4dfedc14948bf4"
    )


def test_qsh_jwt_parameter_does_not_change_the_hash() -> None:
    assert query_string_hash("GET", "/x", "a=1&jwt=abc") == query_string_hash("GET", "/x", "a=1")


def test_qsh_parameter_order_does_not_change_the_hash() -> None:
    assert query_string_hash("GET", "/x", "b=2&a=1&a=0") == _sha("GET&/x&a=0,1&b=2")
    assert query_string_hash("GET", "/x", "a=0&b=2&a=1") == _sha("GET&/x&a=0,1&b=2")
