"""The testbed's internet: one host beside the platform hosts that provides what the internet would.

- DNS: authoritative for the `test.` zone (the platform's names, `remote.test`, the domains tests
  create), resolving everything else through this machine's resolver; the platform hosts use it as
  their only resolver. Records change by RFC 2136 updates signed with the testbed's TSIG key, as a
  DNS provider's API would change them.
- A remote mail exchanger, `mx.remote.test`: Postfix accepting mail for `remote.test` only, with
  STARTTLS offered, keeping every message in a Maildir with the TLS parameters of its connection
  in its Received header.
- An ACME server (Let's Encrypt's pebble) at https://acme.test:14000/dir, validating through the
  testbed's DNS.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import os
import ssl
import time
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update

from postyard.internal_ca import HostCertificate, ca_certificate_pem, host_certificate
from postyard.secrets import SecretStore
from postyard.testbed.commands import CommandError, run

__all__ = [
    "ZONE", "TSIG_NAME", "MX_NAME", "MX_DOMAIN", "REJECTED_RECIPIENT", "ACME_DIRECTORY", "configure", "configure_dns",
    "reverse_zone", "reverse_zone_file", "zone_file", "upstream_resolvers", "wait_for_dns", "update", "acme_root_pem",
    "MAILDIR",
]

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


def reverse_zone(ns_address: str) -> str:
    """The in-addr.arpa zone of the public /24 the testbed's hosts live in."""
    return ".".join(reversed(ns_address.split(".")[:3])) + ".in-addr.arpa"


def reverse_zone_file(ns_address: str, records: dict[str, str]) -> str:
    """PTR records naming each host of the zone file, as a hosting provider sets them (Hetzner's `dns_ptr`)."""
    zone = reverse_zone(ns_address)
    lines = ["$TTL 60", f"@ IN SOA ns.{ZONE}. hostmaster.{ZONE}. ( 1 60 60 3600 60 )", f"@ IN NS ns.{ZONE}."]
    for name, address in sorted(records.items(), key=lambda item: ipaddress.ip_address(item[1])):
        if ipaddress.ip_address(address).reverse_pointer.endswith(f".{zone}"):
            lines.append(f"{ipaddress.ip_address(address).reverse_pointer}. IN PTR {name}.{ZONE}.")
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
    reverse = reverse_zone(ns_address)
    (root / "etc/bind/named.conf.local").write_text(
        'include "/etc/bind/postyard-tsig.key";\n'
        + "".join(f'zone "{name}" {{ type master; file "/var/lib/bind/db.{name}"; '
                  f'allow-update {{ key "{TSIG_NAME}"; }}; }};\n' for name in (ZONE, reverse))
    )
    for name, text in ((ZONE, zone_file(ns_address, records)), (reverse, reverse_zone_file(ns_address, records))):
        zone = root / f"var/lib/bind/db.{name}"
        zone.write_text(text)
        os.chown(zone, *_owner(root, "bind"))


def wait_for_dns(address: str, timeout: float = 120) -> None:
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


def update(address: str, secret: str, name: str, rdtype: str, values: list[str], ttl: int = 60,
           zone: str = ZONE) -> None:
    """Replace the records of one name (relative to `zone`, or absolute) by TSIG-signed update."""
    keyring = dns.tsigkeyring.from_text({TSIG_NAME: secret})
    message = dns.update.UpdateMessage(f"{zone}.", keyring=keyring, keyalgorithm="hmac-sha256")
    if values:
        message.replace(name, ttl, rdtype, *values)
    else:
        message.delete(name, rdtype)
    response = dns.query.tcp(message, address, timeout=5)
    if response.rcode() != dns.rcode.NOERROR:
        raise CommandError(f"DNS update of {name} refused: {dns.rcode.to_text(response.rcode())}")


MX_NAME = f"mx.remote.{ZONE}"
MX_DOMAIN = f"remote.{ZONE}"
REJECTED_RECIPIENT = f"rejected@{MX_DOMAIN}"
MAILDIR = "/home/inbox/Maildir"  # where the remote MX keeps every message
ACME_NAME = f"acme.{ZONE}"
ACME_DIRECTORY = f"https://{ACME_NAME}:14000/dir"
ACME_MANAGEMENT_PORT = 15000

MX_MAIN_CF = """# The testbed's remote mail exchanger: accepts mail for {domain} only and keeps every message.
compatibility_level = 3.6
myhostname = {name}
mydomain = {domain}
mydestination = {name}, {domain}, localhost
inet_interfaces = all
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# One mailbox that does not exist, for bounce tests.
smtpd_recipient_restrictions = check_recipient_access inline:{{ {{ {rejected} = 550 5.1.1 No such user here }} }}
local_recipient_maps =
luser_relay = inbox
alias_maps =
alias_database =
home_mailbox = Maildir/
smtpd_tls_cert_file = /etc/postfix/mx.crt
smtpd_tls_key_file = /etc/postfix/mx.key
smtpd_tls_security_level = may
smtpd_tls_received_header = yes
smtpd_tls_loglevel = 1
smtp_tls_security_level = may
message_size_limit = 52428800
mailbox_size_limit = 0
biff = no
"""

PEBBLE_UNIT = """[Unit]
Description=pebble, the testbed's ACME server
After=network.target named.service

[Service]
Environment=PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0
ExecStart=/usr/bin/pebble -config /etc/pebble/pebble-config.json -dnsserver 127.0.0.1:53
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""


def configure_mx(root: Path, certificate: HostCertificate) -> None:
    """Postfix as mx.remote.test, delivering every accepted message to the inbox user's Maildir."""
    (root / "etc/postfix/main.cf").write_text(MX_MAIN_CF.format(name=MX_NAME, domain=MX_DOMAIN,
                                                                rejected=REJECTED_RECIPIENT))
    (root / "etc/mailname").write_text(MX_NAME + "\n")
    (root / "etc/postfix/mx.crt").write_text(certificate.certificate_pem)
    key = root / "etc/postfix/mx.key"
    key.write_text(certificate.key_pem)
    key.chmod(0o600)
    run(["useradd", "--root", str(root), "--create-home", "--shell", "/usr/sbin/nologin", "inbox"])


def configure_acme(root: Path, certificate: HostCertificate) -> None:
    """pebble listening on 14000 (ACME) and 15000 (management: its roots), started at boot."""
    config = root / "etc/pebble"
    config.mkdir(parents=True, exist_ok=True)
    (config / "cert.pem").write_text(certificate.certificate_pem)
    (config / "key.pem").write_text(certificate.key_pem)
    (config / "pebble-config.json").write_text(json.dumps({"pebble": {
        "listenAddress": "0.0.0.0:14000",
        "managementListenAddress": f"0.0.0.0:{ACME_MANAGEMENT_PORT}",
        "certificate": "/etc/pebble/cert.pem",
        "privateKey": "/etc/pebble/key.pem",
        "httpPort": 80,
        "tlsPort": 443,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
    }}, indent=2))
    (root / "etc/systemd/system/pebble.service").write_text(PEBBLE_UNIT)
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "pebble.service").symlink_to("/etc/systemd/system/pebble.service")


def configure(root: Path, ns_address: str, clients: list[str], records: dict[str, str],
              store: SecretStore, resolv_conf: str) -> None:
    """Everything the internet host serves, written before it boots."""
    configure_dns(root, ns_address, clients, {**records, "acme": ns_address}, tsig_secret(store),
                  upstream_resolvers(resolv_conf))
    configure_mx(root, host_certificate(store, MX_NAME, [MX_NAME, ns_address]))
    configure_acme(root, host_certificate(store, ACME_NAME, [ACME_NAME, ns_address]))


def acme_root_pem(bed: Any) -> str:
    """The root pebble issues under, from its management listener (a new one each time pebble starts)."""
    ca = ca_certificate_pem(SecretStore(bed.directory / "secrets"))
    connection = http.client.HTTPSConnection(
        bed.internet_host.public_address, ACME_MANAGEMENT_PORT, timeout=10,
        context=ssl.create_default_context(cadata=ca),
    )
    try:
        connection.request("GET", "/roots/0")
        response = connection.getresponse()
        body = response.read().decode()
    finally:
        connection.close()
    if response.status != 200:
        raise CommandError(f"pebble answered {response.status} for its root")
    return body
