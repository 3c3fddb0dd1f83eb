"""Refusing webhook URLs that resolve to loopback, private, link-local, metadata or other non-public addresses.

The rule is an explicit table of the IANA special-purpose registries (IPv4 and IPv6), not `is_global`
alone (Python 3.11's passes NAT64, 6to4, site-local...). Address forms that embed an IPv4 address
(IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo) are refused outright, whatever they embed: a
public service is reachable by its IPv4 address itself. IPv6 must also be global unicast (2000::/3).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from app.config import IPNetwork

__all__ = ["SPECIAL_PURPOSE", "Resolve", "UnsafeUrl", "Vetted", "check_url", "is_public_address",
           "special_purpose", "system_resolve", "vet_url"]

SPECIAL_PURPOSE: dict[IPNetwork, str] = {ipaddress.ip_network(net): why for net, why in {
    # IPv4 special-purpose registry (RFC 6890 and its updates), every row refused.
    "0.0.0.0/8": "this network (RFC 791)",
    "10.0.0.0/8": "private (RFC 1918)",
    "100.64.0.0/10": "shared address space, carrier-grade NAT (RFC 6598)",
    "127.0.0.0/8": "loopback (RFC 1122)",
    "169.254.0.0/16": "link-local, cloud metadata (RFC 3927)",
    "172.16.0.0/12": "private (RFC 1918)",
    "192.0.0.0/24": "IETF protocol assignments (RFC 6890)",
    "192.0.2.0/24": "documentation TEST-NET-1 (RFC 5737)",
    "192.31.196.0/24": "AS112-v4 (RFC 7535)",
    "192.52.193.0/24": "AMT (RFC 7450)",
    "192.88.99.0/24": "6to4 relay anycast, deprecated (RFC 7526)",
    "192.168.0.0/16": "private (RFC 1918)",
    "192.175.48.0/24": "direct delegation AS112 (RFC 7534)",
    "198.18.0.0/15": "benchmarking (RFC 2544)",
    "198.51.100.0/24": "documentation TEST-NET-2 (RFC 5737)",
    "203.0.113.0/24": "documentation TEST-NET-3 (RFC 5737)",
    "224.0.0.0/4": "multicast (RFC 5771)",
    "240.0.0.0/4": "reserved, limited broadcast (RFC 1112, RFC 919)",
    # IPv6 special-purpose registry, and the IETF-reserved blocks outside global unicast.
    "::/8": "reserved: unspecified, loopback, IPv4-compatible, IPv4-mapped, IPv4-translated (RFC 4291, RFC 2765)",
    "64:ff9b::/96": "NAT64 well-known prefix, embeds an IPv4 address (RFC 6052)",
    "64:ff9b:1::/48": "local-use IPv4/IPv6 translation (RFC 8215)",
    "100::/8": "reserved, discard-only 100::/64 included (RFC 6666)",
    "2001::/23": "IETF protocol assignments, Teredo 2001::/32 included (RFC 2928, RFC 4380)",
    "2001:db8::/32": "documentation (RFC 3849)",
    "2002::/16": "6to4, embeds an IPv4 address (RFC 3056)",
    "2620:4f:8000::/48": "direct delegation AS112 (RFC 7534)",
    "3fff::/20": "documentation (RFC 9637)",
    "5f00::/16": "SRv6 SIDs (RFC 9602)",
    "fc00::/7": "unique local (RFC 4193)",
    "fe80::/10": "link-local (RFC 4291)",
    "fec0::/10": "site-local, deprecated (RFC 3879)",
    "ff00::/8": "multicast (RFC 4291)",
}.items()}
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")

Resolve = Callable[[str, int], Awaitable[list[str]]]
"""Resolve (host, port) to addresses; raises OSError when the name does not resolve."""


class UnsafeUrl(ValueError):
    """The URL is malformed or points somewhere webhooks may not go."""


def special_purpose(address: str) -> str | None:
    """Why the address is not a public destination (its special-purpose range), or None if it is public."""
    ip = ipaddress.ip_address(address.split("%")[0])
    for network, why in SPECIAL_PURPOSE.items():
        if ip.version == network.version and ip in network:
            return why
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _GLOBAL_UNICAST_V6:
        return "not IPv6 global unicast (RFC 4291)"
    if not ip.is_global or ip.is_multicast:
        return "not globally routable"
    return None


def is_public_address(address: str) -> bool:
    """Whether the address is globally routable and in no special-purpose range."""
    return special_purpose(address) is None


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses getaddrinfo gives for the host (as the HTTP client would connect)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _parts(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("endpoint must be a valid http or https URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise UnsafeUrl("endpoint must be an http or https URL without credentials")
    return parts.hostname, port or _default_port(parts.scheme)


@dataclass(frozen=True)
class Vetted:
    """A URL whose host resolved to checked addresses, and the same URL pinned to the first of them."""

    url: str
    host: str
    address: str

    @property
    def pinned_url(self) -> str:
        """The URL with its host replaced by the vetted address, so no second DNS answer is used."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if ":" in self.address else self.address
        return urlunsplit(parts._replace(netloc=f"{literal}:{parts.port or _default_port(parts.scheme)}"))

    @property
    def host_header(self) -> str:
        """The Host header of the original URL."""
        return urlsplit(self.url).netloc


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _allowed(address: str, exempt: Sequence[IPNetwork]) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    return is_public_address(address) or any(ip in network for network in exempt)


async def vet_url(url: str, exempt: Sequence[IPNetwork] = (), timeout: float = 5.0,
                  resolve: Resolve = system_resolve) -> Vetted:
    """Resolve the URL's host; refuse it unless every address is public or in an `exempt` network.

    The returned URL is pinned to the first address, which is one of those checked.
    """
    host, port = _parts(url)
    if len(url) > 2048:
        raise UnsafeUrl("endpoint is too long")
    try:
        addresses = list(dict.fromkeys(await asyncio.wait_for(resolve(host, port), timeout)))
    except (OSError, TimeoutError, UnicodeError):
        raise UnsafeUrl(f"endpoint host {host} does not resolve") from None
    if not addresses:
        raise UnsafeUrl(f"endpoint host {host} does not resolve")
    # Every address, not only the pinned one: a name may not mix public and private answers.
    if not all(_allowed(a, exempt) for a in addresses):
        raise UnsafeUrl(f"endpoint host {host} resolves to a non-public address")
    return Vetted(url=url, host=host, address=addresses[0])


async def check_url(url: str, exempt: Sequence[IPNetwork] = (), timeout: float = 5.0,
                    resolve: Resolve = system_resolve) -> None:
    """Refuse the URL unless its host resolves only to public addresses (or ones in an `exempt` network)."""
    await vet_url(url, exempt, timeout, resolve)
