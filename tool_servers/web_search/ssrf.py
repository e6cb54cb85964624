"""The SSRF guard: may this URL be fetched? Decided on resolved addresses, before any connection.

Refused: non-http(s) schemes, credentials in URLs, names of cloud metadata services, and any host that
resolves to a loopback, private, link-local, multicast, reserved, unspecified or shared address — in
any spelling (decimal `2130706433`, hex, octal, short `127.1`, IPv4-mapped IPv6), because the check
runs on what `getaddrinfo` returns, and IPv4-mapped/6to4/NAT64 forms are unwrapped. The resolver is a
seam: tests map public-looking names to loopback servers.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio.to_thread

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
METADATA_NAMES = {
    "metadata.google.internal",
    "metadata",
    "metadata.azure.com",
    "instance-data",
    "instance-data.ec2.internal",
}
METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
                      ipaddress.ip_address("100.100.100.200")}  # fmt: skip


class Refused(ValueError):
    """The URL may not be fetched; the message says why."""


@dataclass(frozen=True, slots=True)
class Target:
    """A URL cleared for fetching, pinned to the address that was checked."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await anyio.to_thread.run_sync(lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _unwrap(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address):
        for inner in (address.ipv4_mapped, address.sixtofour):
            if inner is not None:
                return inner
        if address in ipaddress.ip_network("64:ff9b::/96"):  # NAT64 well-known prefix
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def is_public(address: Address) -> bool:
    address = _unwrap(address)
    if address in METADATA_ADDRESSES:
        return False
    return not (
        address.is_loopback or address.is_private or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified or not address.is_global
    )  # fmt: skip


class Guard:
    """Checks URLs; `allow_private` (FETCH_ALLOW_PRIVATE=1) lifts the address rule, never the scheme rule."""

    def __init__(
        self,
        resolver: Resolver = system_resolver,
        allow_private: bool = False,
        policy: Callable[[str, Address], bool] | None = None,
    ) -> None:
        self._resolve = resolver
        self._allow_private = allow_private
        self._policy = policy or (lambda host, address: is_public(address))

    async def check(self, url: str) -> Target:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https"):
            raise Refused(f"only http and https URLs can be fetched, not {parts.scheme or 'a bare path'!r}")
        if parts.username or parts.password:
            raise Refused("URLs with credentials are not fetched")
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise Refused("the URL has no host")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if not self._allow_private and (host in METADATA_NAMES or host.endswith(".localhost") or host == "localhost"):
            raise Refused(f"{host} is a local or cloud-metadata name; it is not fetched")
        try:
            addresses = await self._resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise Refused(f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise Refused(f"{host} has no address")
        parsed = [ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses]
        if not self._allow_private:
            bad = [str(a) for a in parsed if not self._policy(host, a)]
            if bad:
                raise Refused(
                    f"{host} resolves to a non-public address ({', '.join(bad)}); private, loopback, link-local "
                    "and metadata addresses are not fetched (FETCH_ALLOW_PRIVATE=1 allows them)"
                )
        return Target(url=url.strip(), scheme=parts.scheme, host=host, port=port, address=str(parsed[0]))
