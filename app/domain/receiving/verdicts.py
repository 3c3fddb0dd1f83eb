"""SPF, DKIM and DMARC verdicts on a received message, as authheaders gives them in an Authentication-Results
header (RFC 8601), and each method's result read back from it."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import authheaders
import authres
import dns.exception
import dns.resolver
import spf
from authres.core import DKIMAuthenticationResult, SPFAuthenticationResult
from authres.dmarc import DMARCAuthenticationResult

from app.config import Settings

__all__ = ["METHODS", "Verdicts", "authenticate", "use_configured_resolver"]

METHODS = ("spf", "dkim", "dmarc")


@dataclass(frozen=True)
class Verdicts:
    """Each method's result (`pass`, `fail`, `none`, `temperror`...) and the header they were read from."""

    spf: str
    dkim: str
    dmarc: str
    header: str


def use_configured_resolver(settings: Settings) -> None:
    """Have dnspython's default resolver, which pyspf, dkimpy and authheaders query, ask the configured
    nameserver (the system's when none is set), within the DNS timeout."""
    resolver = dns.resolver.Resolver(configure=not settings.dns_nameserver)
    if settings.dns_nameserver:
        resolver.nameservers = [settings.dns_nameserver]
        resolver.port = settings.dns_port
    resolver.lifetime = resolver.timeout = settings.dns_timeout
    dns.resolver.default_resolver = resolver


def _spf(client_address: str, envelope_from: str, helo: str, timeout: float) -> Any:
    try:
        ipaddress.ip_address(client_address)
    except ValueError:  # mail Postfix took from this host itself (its pickup) has no client to check
        return SPFAuthenticationResult(result="none", reason="no SMTP client address")
    result, reason = spf.check2(client_address, envelope_from, helo, querytime=timeout)
    return SPFAuthenticationResult(result=result or "none", reason=reason[:200] or None,
                                   smtp_mailfrom=envelope_from or None, smtp_helo=helo or None)


def _dkim(raw: bytes) -> Any:
    if not re.search(rb"(?im)^dkim-signature:", raw):
        return DKIMAuthenticationResult(result="none")
    try:
        return authheaders.check_dkim(raw)
    except Exception:  # noqa: BLE001 - a signature dkimpy cannot even read fails
        return DKIMAuthenticationResult(result="permerror")


def _dmarc(raw: bytes, spf_result: Any, dkim_result: Any) -> Any:
    try:
        return authheaders.check_dmarc(raw, spf_result, dkim_result)
    except dns.exception.DNSException:  # the policy lookup failed: neither pass nor fail
        return DMARCAuthenticationResult(result="temperror", reason="the DMARC record could not be read")
    except Exception:  # noqa: BLE001 - a header block dkimpy cannot parse has no From domain to check
        return DMARCAuthenticationResult(result="permerror", reason="the message's From domain could not be read")


def authenticate(raw: bytes, authserv_id: str, client_address: str, helo: str, envelope_from: str,
                 dns_timeout: float) -> Verdicts:
    """Check the message's SPF (the client against the envelope sender, or the HELO name for a null sender), its
    DKIM signatures and the From domain's DMARC policy with pyspf, dkimpy and authheaders; a lookup that fails
    gives `temperror`. The resolver is whatever `use_configured_resolver` set."""
    results = [_spf(client_address, envelope_from, helo, dns_timeout), _dkim(raw)]
    results.append(_dmarc(raw, *results))
    header = str(authres.AuthenticationResultsHeader(authserv_id=authserv_id, results=results))
    value = header.split(":", 1)[1].strip().replace("\x00", "")  # a reason may quote the message's own text
    return Verdicts(*(str(r.result or "none") for r in results), header=value)
