"""The DNS records a sending domain publishes, and checking them with dnspython."""

from __future__ import annotations

from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver
import dns.rrset

from app.config import Settings

__all__ = ["OWNERSHIP_PREFIX", "ExpectedRecord", "check_record", "make_resolver", "ownership_name",
           "published_tokens"]

OWNERSHIP_PREFIX = "postyard-verification="


@dataclass(frozen=True)
class ExpectedRecord:
    """One record to publish: what it is for, its name, type, value and (MX) priority."""

    key: str
    record: str
    name: str
    type: str
    value: str
    priority: int | None = None
    required: bool = True
    ttl: str = "Auto"


def make_resolver(settings: Settings) -> dns.asyncresolver.Resolver:
    """A resolver using the configured nameserver and port, or the system's when none is set."""
    if not settings.dns_nameserver:
        resolver = dns.asyncresolver.Resolver()
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [settings.dns_nameserver]
        resolver.port = settings.dns_port
    resolver.lifetime = settings.dns_timeout
    resolver.timeout = settings.dns_timeout
    return resolver


def _normalise(value: str) -> str:
    return " ".join(value.replace('"', "").split()).rstrip(".").lower()


def ownership_name(domain: str) -> str:
    """Where a domain entry's ownership record lives: `_postyard.<domain>`."""
    return f"_postyard.{domain}"


def _txt_matches(expected: ExpectedRecord, answers: list[str]) -> bool:
    if expected.record == "Ownership":
        return any(_normalise(a) == _normalise(expected.value) for a in answers)
    if expected.record == "DKIM":
        want = _normalise(expected.value).replace(" ", "")
        return any(_normalise(a).replace(" ", "") == want for a in answers)
    prefix = _normalise(expected.value).split(";")[0].split(" ")[0]
    if expected.record == "SPF":
        return any(_normalise(a) == _normalise(expected.value) for a in answers)
    return any(_normalise(a).startswith(prefix) for a in answers)


async def _lookup(resolver: dns.asyncresolver.Resolver, name: str, rdtype: str) -> dns.rrset.RRset | str:
    """The answer's rrset, or `failed` (none) or `temporary_failure` (no answer in time)."""
    try:
        answer = await resolver.resolve(name, rdtype, raise_on_no_answer=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.name.NameTooLong, dns.name.EmptyLabel):
        return "failed"
    except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout):
        return "temporary_failure"
    except dns.exception.DNSException:
        return "failed"
    return "failed" if answer.rrset is None else answer.rrset


def _texts(rrset: dns.rrset.RRset) -> list[str]:
    return [b"".join(r.strings).decode(errors="replace") for r in rrset]


async def check_record(resolver: dns.asyncresolver.Resolver, expected: ExpectedRecord) -> str:
    """`verified`, `failed` (absent or different) or `temporary_failure` (no answer in time)."""
    rrset = await _lookup(resolver, expected.name, expected.type)
    if isinstance(rrset, str):
        return rrset
    if expected.type == "TXT":
        return "verified" if _txt_matches(expected, _texts(rrset)) else "failed"
    if expected.type == "MX":
        hosts = {_normalise(r.exchange.to_text()) for r in rrset}
        return "verified" if _normalise(expected.value) in hosts else "failed"
    if expected.type == "CNAME":
        targets = {_normalise(r.target.to_text()) for r in rrset}
        return "verified" if _normalise(expected.value) in targets else "failed"
    return "failed"


async def published_tokens(resolver: dns.asyncresolver.Resolver, domain: str) -> list[str] | None:
    """Every ownership token published for the domain (any team's); None when DNS gave no answer in time."""
    rrset = await _lookup(resolver, ownership_name(domain), "TXT")
    if rrset == "temporary_failure":
        return None
    if isinstance(rrset, str):
        return []
    values = (_normalise(t) for t in _texts(rrset))
    return [v.removeprefix(OWNERSHIP_PREFIX) for v in values if v.startswith(OWNERSHIP_PREFIX)]
