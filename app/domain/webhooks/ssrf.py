"""Refusing webhook URLs that resolve to loopback, private, link-local, metadata or other non-public addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

__all__ = ["UnsafeUrl", "Vetted", "check_url", "is_public_address", "vet_url"]


class UnsafeUrl(ValueError):
    """The URL is malformed or points somewhere webhooks may not go."""


def is_public_address(address: str) -> bool:
    """Whether the address is globally routable (not loopback, private, link-local, shared, reserved...)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


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


async def vet_url(url: str, allow_private: bool, timeout: float = 5.0) -> Vetted:
    """Resolve the URL's host; refuse it unless every address is public (or `allow_private` is set)."""
    host, port = _parts(url)
    if len(url) > 2048:
        raise UnsafeUrl("endpoint is too long")
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    except (OSError, TimeoutError, UnicodeError):
        raise UnsafeUrl(f"endpoint host {host} does not resolve") from None
    addresses = [info[4][0] for info in infos]
    if not addresses or (not allow_private and not all(is_public_address(a) for a in addresses)):
        raise UnsafeUrl(f"endpoint host {host} resolves to a non-public address")
    return Vetted(url=url, host=host, address=addresses[0])


async def check_url(url: str, allow_private: bool, timeout: float = 5.0) -> None:
    """Refuse the URL unless its host resolves only to public addresses (or `allow_private` is set)."""
    await vet_url(url, allow_private, timeout)
