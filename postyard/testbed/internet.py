"""The testbed's internet: a host beside the platform hosts that is authoritative for the `test.`
zone (the platform's names, `remote.test`, the domains tests create) and resolves everything else
through this machine's resolver, so the platform hosts use it as their only resolver.

Records change by RFC 2136 updates signed with the testbed's TSIG key, as a DNS provider's API
would change them.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update

from postyard.secrets import SecretStore
from postyard.testbed.commands import CommandError

__all__ = ["ZONE", "TSIG_NAME", "configure_dns", "zone_file", "upstream_resolvers", "wait_for_dns", "update"]

ZONE = "test"
TSIG_NAME = "postyard-testbed"
TSIG_SECRET = "testbed-dns-tsig"


def upstream_resolvers(resolv_conf: str) -> list[str]:
    """This machine's resolvers that a namespace can reach (loopback ones cannot be)."""
    found = []
    for line in resolv_conf.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            address = ipaddress.ip_address(parts[1].split("%")[0])
            if address.version == 4 and not address.is_loopback:
                found.append(str(address))
    return found


def zone_file(ns_address: str, records: dict[str, str]) -> str:
    """The initial `test.` zone: {relative name: IPv4 address} plus remote.test's MX."""
    lines = [
        "$TTL 60",
        f"@ IN SOA ns.{ZONE}. hostmaster.{ZONE}. ( 1 60 60 3600 60 )",
        f"@ IN NS ns.{ZONE}.",
        f"ns IN A {ns_address}",
        f"remote IN MX 10 mx.remote.{ZONE}.",
        f"mx.remote IN A {ns_address}",
    ]
    lines += [f"{name} IN A {address}" for name, address in sorted(records.items())]
    return "\n".join(lines) + "\n"


def tsig_secret(store: SecretStore) -> str:
    return store.get(TSIG_SECRET, lambda: base64.b64encode(os.urandom(32)).decode())


def _owner(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise CommandError(f"the internet root filesystem has no {user} user")


def configure_dns(root: Path, ns_address: str, clients: list[str], records: dict[str, str],
                  secret: str, upstream: list[str]) -> None:
    """Write bind's configuration into the internet host's root filesystem before it boots."""
    forwarding = (
        f"    forwarders {{ {' '.join(f'{a};' for a in upstream)} }};\n    forward only;\n" if upstream else ""
    )
    (root / "etc/bind/named.conf.options").write_text(
        "options {\n"
        '    directory "/var/cache/bind";\n'
        "    listen-on { any; };\n"
        "    listen-on-v6 { none; };\n"
        "    recursion yes;\n"
        f"    allow-recursion {{ 127.0.0.1; {' '.join(f'{c};' for c in clients)} }};\n"
        f"{forwarding}"
        "    dnssec-validation no;\n"
        "};\n"
    )
    (root / "etc/bind/postyard-tsig.key").write_text(
        f'key "{TSIG_NAME}" {{ algorithm hmac-sha256; secret "{secret}"; }};\n'
    )
    (root / "etc/bind/named.conf.local").write_text(
        'include "/etc/bind/postyard-tsig.key";\n'
        f'zone "{ZONE}" {{ type master; file "/var/lib/bind/db.{ZONE}"; '
        f'allow-update {{ key "{TSIG_NAME}"; }}; }};\n'
    )
    zone = root / f"var/lib/bind/db.{ZONE}"
    zone.write_text(zone_file(ns_address, records))
    os.chown(zone, *_owner(root, "bind"))


def wait_for_dns(address: str, timeout: float = 30) -> None:
    """Wait until the server answers for the zone's name server."""
    query = dns.message.make_query(f"ns.{ZONE}.", dns.rdatatype.A)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if dns.query.udp(query, address, timeout=1).rcode() == dns.rcode.NOERROR:
                return
        except (OSError, dns.exception.Timeout):
            pass
        time.sleep(0.3)
    raise CommandError(f"the testbed's DNS at {address} did not answer within {timeout:.0f} s")


def update(address: str, secret: str, name: str, rdtype: str, values: list[str], ttl: int = 60) -> None:
    """Replace the records of one name (relative to `test.`, or absolute) by TSIG-signed update."""
    keyring = dns.tsigkeyring.from_text({TSIG_NAME: secret})
    message = dns.update.UpdateMessage(f"{ZONE}.", keyring=keyring, keyalgorithm="hmac-sha256")
    if values:
        message.replace(name, ttl, rdtype, *values)
    else:
        message.delete(name, rdtype)
    response = dns.query.tcp(message, address, timeout=5)
    if response.rcode() != dns.rcode.NOERROR:
        raise CommandError(f"DNS update of {name} refused: {dns.rcode.to_text(response.rcode())}")
