"""Guarded outbound connections (SPEC "Outbound calls to Jira", §8.3): Jira and Sentry.

One rule for every outbound target (`core.model.host_patterns`): a connection to a private,
loopback, link-local, unspecified or otherwise non-public address is refused unless a
wildcard-free host pattern names that host or that address (for example
`http://127.0.0.1:*`, which is how the tests reach their loopback fakes, or
`http://sentry.internal:9000` for a self-hosted Sentry on a private network).

The check sits in the network backend under httpx, at the moment a TCP connection is
opened: the host is resolved once, *every* resolved address is checked, and the socket
is opened to one of the addresses that were checked, never to a name resolved again.
A DNS answer that changes between the check and the connect (rebinding) therefore
cannot steer the connection elsewhere. TLS still verifies the certificate against the
host name, because httpcore passes the URL's host as `server_hostname`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import httpcore
import httpx

from core.model.host_patterns import HostPattern, IPAddress, is_public, named_targets, unmapped

# (host, port) -> the addresses to try, in order
Resolver = Callable[[str, int], Awaitable[list[str]]]


class EgressRefused(Exception):
    """A connection was refused before it was opened; the message names no secret."""


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the system resolver (getaddrinfo), keeping its order, no duplicates."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def addresses_named_by(patterns: Iterable[HostPattern]) -> frozenset[IPAddress]:
    """The IP literals that host patterns name (non-public addresses allowed by address)."""
    return named_targets(tuple(patterns))[1]


def check_address(
    text: str, named: frozenset[IPAddress], *, host_named: bool = False
) -> IPAddress:
    """Return the parsed address when a connection to it is allowed; else EgressRefused.

    `host_named`: a wildcard-free pattern names the host being resolved, so any address
    it resolves to is allowed (the operator said so by naming it exactly)."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise EgressRefused("the host resolved to something that is not an IP address") from None
    if host_named or is_public(address) or address in named or unmapped(address) in named:
        return address
    raise EgressRefused("the host resolves to an address that is not allowed")


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, then connects to a checked address."""

    def __init__(
        self,
        named: frozenset[IPAddress],
        resolver: Resolver | None = None,
        *,
        named_hosts: frozenset[str] = frozenset(),
    ) -> None:
        self._named = named
        self._named_hosts = named_hosts
        self._resolve = resolver or system_resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                resolved = await self._resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout("resolving the host timed out") from None
        except OSError:
            raise httpcore.ConnectError("could not resolve the host") from None
        if not resolved:
            raise httpcore.ConnectError("the host has no address")
        # Every address is checked before any is used: one bad record refuses the host.
        host_named = host.lower().strip("[]") in self._named_hosts
        addresses = [check_address(t, self._named, host_named=host_named) for t in resolved]
        failure: Exception = httpcore.ConnectError("could not connect")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused("unix sockets are not an allowed destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """An httpx transport whose every connection goes through `GuardedNetworkBackend`.

    No proxy from the environment (a proxy would connect on our behalf, unchecked).
    """

    def __init__(
        self,
        patterns: Iterable[HostPattern],
        *,
        resolver: Resolver | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        names, addresses = named_targets(tuple(patterns))
        ssl_context = httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        # httpx has no public hook for the network backend: replace the pool it built
        # with one that uses the guarded backend (tests prove the guard is in effect).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(addresses, resolver, named_hosts=names),
        )
