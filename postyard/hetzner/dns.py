"""DNS records for the mail hosts and the first sending domain, as Cloud API rrsets."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "TXT_CHUNK", "RRSet", "MailDns", "txt_value", "txt_text", "relative_name",
    "mta_sts_policy", "mail_records",
]

TXT_CHUNK = 255  # bytes in one DNS character-string (RFC 1035 3.3)


@dataclass(frozen=True)
class RRSet:
    """One rrset: zone-relative name ("@" for the apex), type, and record values."""

    name: str
    type: str
    values: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.type)


@dataclass(frozen=True)
class MailDns:
    """What the records describe: hosts' addresses and the sending domain's policies."""

    zone: str
    sending_domain: str
    mail_hostname: str  # the first mail host: mta-sts.<sending domain> points at its addresses
    host_addresses: Mapping[str, tuple[str, str]]  # fqdn -> (ipv4, ipv6)
    api_hostname: str | None
    api_addresses: tuple[str, str] | None
    dkim_selector: str
    dkim_public_key: str  # base64 DER SubjectPublicKeyInfo
    dmarc_policy: str = "quarantine"
    report_mailbox: str = ""
    mta_sts_mode: str = "testing"
    caa_issuer: str = "letsencrypt.org"
    mail_hostnames: tuple[str, ...] = ()  # every mail host (mail_hostname among them)

    @property
    def mx_hosts(self) -> tuple[str, ...]:
        """Every mail host, sorted: the sending domain's MX records and its MTA-STS policy name each."""
        return tuple(sorted({*self.mail_hostnames, self.mail_hostname}))


def _quote(chunk: bytes) -> str:
    text = chunk.decode("utf-8")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _chunks(data: bytes) -> list[bytes]:
    """Split into pieces of at most TXT_CHUNK bytes without cutting a UTF-8 character."""
    pieces, start = [], 0
    while start < len(data):
        end = min(start + TXT_CHUNK, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end -= 1  # back off a continuation byte
        pieces.append(data[start:end])
        start = end
    return pieces or [b""]


def txt_value(text: str) -> str:
    """A TXT record value: quoted character-strings of at most 255 bytes each, space separated."""
    return " ".join(_quote(chunk) for chunk in _chunks(text.encode("utf-8")))


def txt_text(value: str) -> str:
    """The text a TXT record value carries (its quoted strings joined), for checks and tests."""
    parts, current, inside, escaped = [], [], False, False
    for char in value:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and inside:
            escaped = True
        elif char == '"':
            if inside:
                parts.append("".join(current))
                current = []
            inside = not inside
        elif inside:
            current.append(char)
    return "".join(parts)


def relative_name(fqdn: str, zone: str) -> str:
    """The rrset name of fqdn inside zone ("@" for the apex); ValueError when outside it."""
    fqdn, zone = fqdn.rstrip(".").lower(), zone.rstrip(".").lower()
    if fqdn == zone:
        return "@"
    if not fqdn.endswith("." + zone):
        raise ValueError(f"{fqdn} is not inside the DNS zone {zone}")
    return fqdn[: -len(zone) - 1]


def mta_sts_policy(mode: str, mx_hosts: Iterable[str], max_age: int = 604800) -> str:
    """The MTA-STS policy file (RFC 8461) the mta-sts host serves."""
    lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {mx}" for mx in mx_hosts), f"max_age: {max_age}"]
    return "\r\n".join(lines) + "\r\n"


def _address_sets(name: str, addresses: tuple[str, str]) -> list[RRSet]:
    ipv4, ipv6 = addresses
    return [RRSet(name, "A", (ipv4,)), RRSet(name, "AAAA", (ipv6,))]


def mail_records(dns: MailDns) -> tuple[RRSet, ...]:
    """Every rrset the platform needs in the zone, sorted by name and type."""
    zone = dns.zone
    domain = relative_name(dns.sending_domain, zone)

    def under(label: str) -> str:
        return label if domain == "@" else f"{label}.{domain}"

    mailbox = dns.report_mailbox or f"postmaster@{dns.sending_domain}"
    mail_addresses = dns.host_addresses[dns.mail_hostname]
    policy_id = hashlib.sha256(mta_sts_policy(dns.mta_sts_mode, dns.mx_hosts).encode()).hexdigest()[:20]
    sets: list[RRSet] = []
    for fqdn, addresses in dns.host_addresses.items():
        sets += _address_sets(relative_name(fqdn, zone), addresses)
    if dns.api_hostname and dns.api_addresses and dns.api_hostname not in dns.host_addresses:
        sets += _address_sets(relative_name(dns.api_hostname, zone), dns.api_addresses)
    sets += _address_sets(relative_name(f"mta-sts.{dns.sending_domain}", zone), mail_addresses)
    sets += [
        RRSet(domain, "MX", tuple(f"10 {mx}." for mx in dns.mx_hosts)),
        RRSet(domain, "TXT", (txt_value("v=spf1 mx -all"),)),  # every MX host, however many
        RRSet(under(f"{dns.dkim_selector}._domainkey"), "TXT",
              (txt_value(f"v=DKIM1; k=rsa; p={dns.dkim_public_key}"),)),
        RRSet(under("_dmarc"), "TXT",
              (txt_value(f"v=DMARC1; p={dns.dmarc_policy}; rua=mailto:{mailbox}; adkim=s; aspf=s"),)),
        RRSet(under("_mta-sts"), "TXT", (txt_value(f"v=STSv1; id={policy_id}"),)),
        RRSet(under("_smtp._tls"), "TXT", (txt_value(f"v=TLSRPTv1; rua=mailto:{mailbox}"),)),
        RRSet(domain, "CAA", (f'0 issue "{dns.caa_issuer}"',)),
    ]
    return tuple(sorted(sets, key=lambda s: s.key))
