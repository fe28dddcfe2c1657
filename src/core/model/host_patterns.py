"""Host patterns (`scheme://host-pattern[:port]`) and the one rule every outbound target obeys.

Used for Jira sites (`SENTRY_JIRA_JIRA_HOSTS`, L2), Sentry URLs (`SENTRY_JIRA_SENTRY_HOSTS`,
§8.3) and, later, Forge API hosts. In a host pattern `*` stands for one or more DNS labels;
as the port it stands for any port. An IP literal is accepted only when a pattern names that
exact address; a non-public address is reached only when a wildcard-free host pattern names
that host or address (SPEC "Outbound calls to Jira").

A host is checked for length (253 characters, 63 a label) before any matching, and the
matcher is linear in the number of labels: an unauthenticated install body cannot make it
spend more than a few microseconds.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

import attrs

MAX_HOST_LENGTH = 253
MAX_LABEL_LENGTH = 63
DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_PATTERN = re.compile(r"(https?)://(\[[0-9a-f:.]+\]|[^/:?#@\s\[\]]+)(?::(\*|\d{1,5}))?/?")
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class HostRefused(ValueError):
    """A URL's origin is not an allowed target; the message names no secret."""


@attrs.frozen
class HostPattern:
    """One allowed `scheme://host[:port]`; `port` None = default port only, "*" = any."""

    scheme: str
    host: str
    port: int | str | None

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        """Parse one pattern; raise ValueError with a reason when it is malformed."""
        shown = text.strip()[:80]
        match = _PATTERN.fullmatch(text.strip().lower())
        if not match:
            raise ValueError(f"not a scheme://host[:port] pattern: {shown!r}")
        scheme, host, port_text = match.groups()
        if host.startswith("["):
            if not isinstance(ip_literal(host), ipaddress.IPv6Address):
                raise ValueError(f"bad IPv6 address in pattern: {shown!r}")
            host = host[1:-1]
        elif ip_literal(host) is None:
            labels = host.split(".")
            if len(host) > MAX_HOST_LENGTH or any(
                label != "*" and not _LABEL.match(label) for label in labels
            ):
                raise ValueError(f"bad host in pattern: {shown!r}")
            if "*" not in labels and _NUMERIC_LABEL.match(labels[-1]):
                raise ValueError(f"numeric host in pattern (write the IP address): {shown!r}")
        port: int | str | None
        if port_text is None:
            port = None
        elif port_text == "*":
            port = "*"
        else:
            port = int(port_text)
            if not 0 < port < 65536:
                raise ValueError(f"bad port in pattern: {shown!r}")
            if port == DEFAULT_PORTS[scheme]:
                port = None  # an explicit default port counts as none
        return cls(scheme=scheme, host=host, port=port)

    @property
    def is_exact(self) -> bool:
        """A wildcard-free host: the only kind that may name a non-public host or address."""
        return "*" not in self.host.split(".")

    def matches(self, scheme: str, host: str, port: int | None) -> bool:
        """True when a (lower-case scheme, lower-case host, non-default port) fits.

        The host must already have passed `check_host_shape` (length, labels)."""
        if scheme != self.scheme:
            return False
        if self.port != "*" and port != self.port:
            return False
        address, own = ip_literal(host), ip_literal(self.host)
        if address is not None or own is not None:
            return address is not None and address == own
        return _labels_match(self.host.split("."), host.split("."))

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}{port}"


def parse_host_patterns(text: str) -> tuple[HostPattern, ...]:
    """Parse the comma-separated list; empty items are refused."""
    items = [item.strip() for item in text.split(",")]
    if not items or any(not item for item in items):
        raise ValueError("empty host pattern")
    return tuple(HostPattern.parse(item) for item in items)


def ip_literal(host: str) -> IPAddress | None:
    """The address a host written as an IP literal (`[…]` allowed) stands for, else None."""
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        return None


def unmapped(address: IPAddress) -> IPAddress:
    """`::ffff:127.0.0.1` reaches 127.0.0.1: judge it as the IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address (not loopback, private, link-local,
    unspecified, multicast or reserved; an IPv4-mapped address is judged unmapped)."""
    plain = unmapped(address)
    return plain.is_global and not plain.is_multicast


def named_targets(patterns: tuple[HostPattern, ...]) -> tuple[frozenset[str], frozenset[IPAddress]]:
    """(host names, addresses) that wildcard-free patterns name: the only targets that may
    be (or resolve to) a non-public address."""
    names: set[str] = set()
    addresses: set[IPAddress] = set()
    for pattern in patterns:
        address = ip_literal(pattern.host)
        if address is not None:
            addresses.add(address)
        elif pattern.is_exact:
            names.add(pattern.host)
    return frozenset(names), frozenset(addresses)


def check_host_shape(host: str) -> None:
    """Refuse, before any matching, a host longer than DNS allows or with a bad label."""
    if len(host) > MAX_HOST_LENGTH + 2:  # + 2: the brackets of an IPv6 literal
        raise HostRefused("the host name is too long")
    if ip_literal(host) is not None:
        return
    labels = host.split(".")
    if len(host) > MAX_HOST_LENGTH or any(len(label) > MAX_LABEL_LENGTH for label in labels):
        raise HostRefused("the host name is too long")
    if not all(_LABEL.match(label) for label in labels):
        raise HostRefused("the host is not a valid DNS name")
    if _NUMERIC_LABEL.match(labels[-1]):
        # `2130706433`, `127.1`, `0x7f.1`: resolvers read these as IPv4 addresses
        # (WHATWG: a numeric last label makes the host an IPv4 host), never as names.
        raise HostRefused("the host is a numeric spelling of an address")


@attrs.frozen
class Origin:
    """The checked `scheme://host[:port]` of a URL; `port` None = the scheme's default."""

    scheme: str
    host: str  # lower-case, IPv6 without brackets
    port: int | None
    path: str

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}" + ("" if self.port is None else f":{self.port}")


def split_origin(url: str) -> Origin:
    """Scheme, host and port of an absolute http(s) URL, or HostRefused. No matching."""
    if (
        not isinstance(url, str)
        or not url
        or not url.isascii()
        or any(c.isspace() or not c.isprintable() for c in url)
        or "?" in url
        or "#" in url
    ):
        raise HostRefused("not an absolute http(s) URL")
    authority = url.partition("://")[2].partition("/")[0]
    if len(authority) > MAX_HOST_LENGTH + 8:  # host, brackets, ':' and a port
        raise HostRefused("the host name is too long")
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError:
        raise HostRefused("not an absolute http(s) URL") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host or "@" in parts.netloc or host.endswith("."):
        raise HostRefused("not an absolute http(s) URL")
    check_host_shape(host)
    if port == DEFAULT_PORTS[scheme]:
        port = None
    return Origin(scheme=scheme, host=host, port=port, path=parts.path)


def check_origin(
    url: str, patterns: tuple[HostPattern, ...], *, any_public_https: bool = False
) -> Origin:
    """The origin of `url` when it is an allowed outbound target, else HostRefused.

    With `any_public_https` and no patterns (SENTRY_JIRA_SENTRY_HOSTS unset), any https
    DNS name or public IP literal is allowed; `localhost` names are never public."""
    origin = split_origin(url)
    if any(p.matches(origin.scheme, origin.host, origin.port) for p in patterns):
        return origin
    if any_public_https and not patterns and origin.scheme == "https":
        address = ip_literal(origin.host)
        if address is not None and is_public(address):
            return origin
        if address is None and not _is_localhost(origin.host):
            return origin
    raise HostRefused("the host is not allowed by the host patterns")


def check_sentry_url(url: str, patterns: tuple[HostPattern, ...]) -> Origin:
    """§8.3: an org's Sentry URL against SENTRY_JIRA_SENTRY_HOSTS (unset: any public https
    host). Checked when an org is bound and again before every call to Sentry."""
    return check_origin(url, patterns, any_public_https=True)


def _is_localhost(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")  # RFC 6761: loopback


def _labels_match(pattern: list[str], labels: list[str]) -> bool:
    """`*` consumes one or more whole labels; everything else compares exactly.

    `*` never stands for a punycode (`xn--`) label: an IDN look-alike is only accepted
    when a pattern names it literally. One pass over the labels per pattern item: the set
    of label positions reachable so far is carried forward (no backtracking)."""
    count = len(labels)
    puny = [label.startswith("xn--") for label in labels]
    reachable = [False] * (count + 1)
    reachable[0] = True
    for item in pattern:
        after = [False] * (count + 1)
        if item == "*":
            open_run = False  # a reachable start with only non-punycode labels since
            for end in range(1, count + 1):
                open_run = (open_run or reachable[end - 1]) and not puny[end - 1]
                after[end] = open_run
        else:
            for end in range(1, count + 1):
                after[end] = reachable[end - 1] and labels[end - 1] == item
        reachable = after
    return reachable[count]
