"""Host patterns of SENTRY_JIRA_JIRA_HOSTS and the L2 check of a tenant `baseUrl`.

A pattern is `scheme://host-pattern[:port]`; in the host `*` stands for one or more
DNS labels, and as the port it stands for any port. An IP literal is only accepted
when a pattern names that exact address.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

import attrs

from core.errors import BadRequest

_DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")


@attrs.frozen
class HostPattern:
    """One allowed `scheme://host[:port]`; `port` None = default port only, "*" = any."""

    scheme: str
    host: str
    port: int | str | None

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        """Parse one pattern; raise ValueError with a reason when it is malformed."""
        match = re.fullmatch(r"(https?)://([^/:?#@\s]+)(?::(\*|\d{1,5}))?/?", text.strip().lower())
        if not match:
            raise ValueError(f"not a scheme://host[:port] pattern: {text.strip()!r}")
        scheme, host, port_text = match.groups()
        if not _is_ip(host):
            labels = host.split(".")
            if any(label != "*" and not _LABEL.match(label) for label in labels):
                raise ValueError(f"bad host in pattern: {text.strip()!r}")
        port: int | str | None
        if port_text is None:
            port = None
        elif port_text == "*":
            port = "*"
        else:
            port = int(port_text)
            if not 0 < port < 65536:
                raise ValueError(f"bad port in pattern: {text.strip()!r}")
            if port == _DEFAULT_PORTS[scheme]:
                port = None  # an explicit default port counts as none
        return cls(scheme=scheme, host=host, port=port)

    def matches(self, scheme: str, host: str, port: int | None) -> bool:
        """True when a (lower-case scheme, lower-case host, non-default port) fits."""
        if scheme != self.scheme:
            return False
        if self.port != "*" and port != self.port:
            return False
        if _is_ip(host) or _is_ip(self.host):
            return host == self.host
        return _host_matches(self.host.split("."), host.split("."))

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}"


def parse_host_patterns(text: str) -> tuple[HostPattern, ...]:
    """Parse the comma-separated list; empty items are refused."""
    items = [item.strip() for item in text.split(",")]
    if not items or any(not item for item in items):
        raise ValueError("empty host pattern")
    return tuple(HostPattern.parse(item) for item in items)


def _is_ip(host: str) -> bool:
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _host_matches(pattern: list[str], labels: list[str]) -> bool:
    # `*` consumes one or more whole labels; everything else compares exactly.
    # `*` never stands for a punycode (`xn--`) label: Jira site names are plain ASCII,
    # so an IDN look-alike is only accepted when a pattern names it literally.
    if not pattern:
        return not labels
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        return any(
            _host_matches(rest, labels[n:])
            for n in range(1, len(labels) - len(rest) + 1)
            if not any(label.startswith("xn--") for label in labels[:n])
        )
    return bool(labels) and labels[0] == head and _host_matches(rest, labels[1:])


def check_jira_base_url(url: str, patterns: tuple[HostPattern, ...]) -> str:
    """L2: return the normalised base URL (`scheme://host[:port]`) or raise BadRequest."""
    if not isinstance(url, str) or not url or not url.isascii() or any(c.isspace() for c in url):
        raise BadRequest("baseUrl is not an allowed Jira site")
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BadRequest("baseUrl is not an allowed Jira site") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    refused = (
        scheme not in _DEFAULT_PORTS
        or not host
        or host.endswith(".")
        or "@" in parts.netloc
        or parts.query
        or parts.fragment
        or "?" in url
        or "#" in url
        or parts.path not in ("", "/")
    )
    if refused:
        raise BadRequest("baseUrl is not an allowed Jira site")
    if port == _DEFAULT_PORTS[scheme]:
        port = None
    if not _is_ip(host) and not all(_LABEL.match(label) for label in host.split(".")):
        raise BadRequest("baseUrl is not an allowed Jira site")
    if not _is_ip(host) and _NUMERIC_LABEL.match(host.rsplit(".", 1)[-1]):
        # `2130706433`, `127.1`, `0x7f.1`: resolvers read these as IPv4 addresses
        # (WHATWG: a numeric last label makes the host an IPv4 host), never as names.
        raise BadRequest("baseUrl is not an allowed Jira site")
    if not any(pattern.matches(scheme, host, port) for pattern in patterns):
        raise BadRequest("baseUrl is not an allowed Jira site")
    shown_host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown_host}" + ("" if port is None else f":{port}")
