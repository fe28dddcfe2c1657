"""Which addresses an outbound Jira call may connect to (SPEC "Outbound calls to Jira").

Pure checks only: nothing here opens a socket."""

from __future__ import annotations

import ipaddress

import pytest

from adapters.outbound.egress import EgressRefused, addresses_named_by, check_address
from core.model.jira_hosts import parse_host_patterns

NONE_NAMED: frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address] = frozenset()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.7",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.7",
        "::ffff:169.254.169.254",
        "not-an-address",
    ],
)
def test_a_non_public_address_is_refused_unless_named(address: str) -> None:
    with pytest.raises(EgressRefused):
        check_address(address, NONE_NAMED)


@pytest.mark.parametrize("address", ["8.8.8.8", "104.192.136.1", "2606:4700::1111"])
def test_a_public_address_is_allowed(address: str) -> None:
    assert str(check_address(address, NONE_NAMED)) == address


def test_an_address_named_by_a_pattern_is_allowed() -> None:
    named = addresses_named_by(
        parse_host_patterns("https://*.atlassian.net,http://127.0.0.1:*,https://10.1.2.3")
    )
    assert named == {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("10.1.2.3")}
    assert str(check_address("127.0.0.1", named)) == "127.0.0.1"
    assert str(check_address("10.1.2.3", named)) == "10.1.2.3"
    # The IPv4-mapped form of a named address is the same destination.
    assert check_address("::ffff:127.0.0.1", named)
    with pytest.raises(EgressRefused):
        check_address("127.0.0.2", named)
    with pytest.raises(EgressRefused):
        check_address("::1", named)


def test_a_pattern_with_a_host_name_names_no_address() -> None:
    named = addresses_named_by(parse_host_patterns("http://localhost:*,https://*.jira.com"))
    assert named == frozenset()
