"""Refusing webhook URLs that resolve to loopback, private, link-local, metadata or other non-public addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

__all__ = ["UnsafeUrl", "check_url", "is_public_address"]


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
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def check_url(url: str, allow_private: bool, timeout: float = 5.0) -> None:
    """Resolve the URL's host; refuse it unless every address is public (or `allow_private` is set)."""
    host, port = _parts(url)
    if len(url) > 2048:
        raise UnsafeUrl("endpoint is too long")
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    except (OSError, TimeoutError, UnicodeError):
        raise UnsafeUrl(f"endpoint host {host} does not resolve") from None
    addresses = {info[4][0] for info in infos}
    if not allow_private and not all(is_public_address(a) for a in addresses):
        raise UnsafeUrl(f"endpoint host {host} resolves to a non-public address")
