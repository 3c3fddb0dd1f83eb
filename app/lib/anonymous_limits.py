"""Per-address budgets for routes a caller reaches before authenticating (sign-up, login, invites)."""

from __future__ import annotations

import ipaddress
from typing import Any

from litestar import Request

from app.lib.api_error import ApiError
from app.lib.auth import client_ip, services

__all__ = ["limit_per_ip", "subject_of"]

# An IPv6 client usually holds a whole /64, so one budget covers the prefix, not each address in it.
_IPV6_PREFIX = 64


def subject_of(ip: str) -> str:
    """The rate-limited subject of an address: itself for IPv4, its /64 for IPv6."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.IPv6Network((address, _IPV6_PREFIX), strict=False))
    return str(address)


async def limit_per_ip(request: Request[Any, Any, Any], scope: str) -> None:
    """Count one request of `scope` from the caller's address; 429 with Retry-After beyond its budget."""
    svc = services(request)
    decision = await svc.limiter.hit([f"anon:{scope}:{subject_of(client_ip(request))}"],
                                     [svc.settings.anonymous_rate_limit], svc.settings.rate_limit_window)
    request.state.ratelimit = decision
    if not decision.allowed:
        raise ApiError(429, "rate_limit_exceeded", "Too many requests from this address; try again later",
                       headers=decision.headers())
