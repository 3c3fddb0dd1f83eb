"""SPF, DKIM and DMARC verdicts on a received message (pyspf, dkimpy, authheaders), kept per method and as an
Authentication-Results header (RFC 8601)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.utils import getaddresses
from typing import Any

import authheaders
import authres
import dkim
import dns.exception
import dns.resolver
import spf
from authres.core import DKIMAuthenticationResult, SPFAuthenticationResult
from authres.dmarc import DMARCAuthenticationResult

from app.config import Settings

__all__ = ["MAX_SIGNATURES", "METHODS", "SPF_SECONDS", "Verdicts", "authenticate", "use_configured_resolver"]

METHODS = ("spf", "dkim", "dmarc")
SPF_SECONDS = 20  # all of one SPF check's lookups (RFC 7208 4.6.4 suggests at least 20 s)
MAX_SIGNATURES = 5


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


def _spf(client_address: str, envelope_from: str, helo: str) -> Any:
    try:
        ipaddress.ip_address(client_address)
    except ValueError:  # mail Postfix took from this host itself (its pickup) has no client to check
        return SPFAuthenticationResult(result="none", reason="no SMTP client address")
    try:
        result, reason = spf.check2(client_address, envelope_from, helo, querytime=SPF_SECONDS)
    except Exception as error:  # noqa: BLE001 - e.g. a HELO name DNS cannot ask for: nothing to hold it to
        return SPFAuthenticationResult(result="permerror", reason=f"{type(error).__name__}"[:200])
    return SPFAuthenticationResult(result=result or "none", reason=reason[:200] or None,
                                   smtp_mailfrom=envelope_from or None, smtp_helo=helo or None)


def _header_block(raw: bytes) -> bytes:
    return re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]


def _from_domains(raw: bytes) -> list[str]:
    values = message_from_bytes(_header_block(raw), policy=policy.compat32).get_all("From") or []
    return [address.rpartition("@")[2].lower() for _, address in getaddresses([str(v) for v in values])
            if "@" in address]


def _aligned(signer: str, from_domains: list[str]) -> bool:
    """Relaxed alignment, near enough to prefer the signature DMARC will look for."""
    return any(signer == d or d.endswith(f".{signer}") or signer.endswith(f".{d}") for d in from_domains)


def _dkim(raw: bytes, from_domains: list[str]) -> Any:
    """Every signature (up to MAX_SIGNATURES) is checked, and the one that decides is reported: a pass aligned
    with the From domain, else any pass, else the first signature's failure. A mailing list's or a provider's
    signature beside the author's does not hide the author's."""
    count = len(re.findall(rb"(?im)^dkim-signature:", _header_block(raw)))
    if not count:
        return DKIMAuthenticationResult(result="none")
    checked: list[tuple[str, str, str]] = []  # (result, d=, i=)
    try:
        verifier = dkim.DKIM(raw)
    except Exception:  # noqa: BLE001 - a message dkimpy cannot parse has no signature that holds
        return DKIMAuthenticationResult(result="permerror")
    for index in range(min(count, MAX_SIGNATURES)):
        try:
            result = "pass" if verifier.verify(idx=index) else "fail"
        except dns.exception.DNSException:
            result = "temperror"
        except Exception:  # noqa: BLE001 - dkimpy's errors on a malformed signature vary: it fails
            result = "fail"
        fields = verifier.signature_fields or {}
        checked.append((result, fields.get(b"d", b"").decode(errors="replace").lower(),
                        fields.get(b"i", b"").decode(errors="replace")))
    passed = [c for c in checked if c[0] == "pass"]
    deciding = next((c for c in passed if _aligned(c[1], from_domains)), passed[0] if passed else checked[0])
    return DKIMAuthenticationResult(result=deciding[0], header_d=deciding[1] or None, header_i=deciding[2] or None)


def _dmarc(raw: bytes, from_domains: list[str], spf_result: Any, dkim_result: Any) -> Any:
    if len(from_domains) != 1:  # RFC 7489 6.6.1: no single author domain to hold to a policy
        return DMARCAuthenticationResult(result="permerror",
                                         reason=f"the message has {len(from_domains)} From domains, not one")
    try:
        return authheaders.check_dmarc(raw, spf_result, dkim_result)
    except dns.exception.DNSException:  # the policy lookup failed: neither pass nor fail
        return DMARCAuthenticationResult(result="temperror", reason="the DMARC record could not be read")
    except Exception:  # noqa: BLE001 - a header block dkimpy cannot parse has no From domain to check
        return DMARCAuthenticationResult(result="permerror", reason="the message's From domain could not be read")


def authenticate(raw: bytes, authserv_id: str, client_address: str, helo: str, envelope_from: str) -> Verdicts:
    """Check the message's SPF (the client against the envelope sender, or the HELO name for a null sender), its
    DKIM signatures and its From domain's DMARC policy with pyspf, dkimpy and authheaders; a lookup that fails
    gives `temperror`. Each DNS query waits at most the resolver's timeout (`use_configured_resolver`), SPF at
    most SPF_SECONDS in all, and at most MAX_SIGNATURES signatures are checked, so a message cannot hold the pipe
    for long."""
    from_domains = _from_domains(raw)
    results = [_spf(client_address, envelope_from, helo), _dkim(raw, from_domains)]
    results.append(_dmarc(raw, from_domains, *results))
    header = str(authres.AuthenticationResultsHeader(authserv_id=authserv_id, results=results))
    value = header.split(":", 1)[1].strip().replace("\x00", "")  # a reason may quote the message's own text
    return Verdicts(*(str(r.result or "none") for r in results), header=value)
