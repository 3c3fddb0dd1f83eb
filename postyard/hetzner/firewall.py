"""Cloud Firewall rules from the public rows of the exposure table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import ip_network

from postyard.exposure import EXPOSURE, Exposure
from postyard.topology import LB_GROUP

__all__ = ["ANYWHERE", "InboundRule", "public_rows", "inbound_rules", "rules_payload"]

ANYWHERE: tuple[str, ...] = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class InboundRule:
    """One inbound Cloud Firewall rule."""

    port: str
    protocol: str
    source_ips: tuple[str, ...]
    description: str


def public_rows(flags: Mapping[str, object], table: Iterable[Exposure] = EXPOSURE) -> tuple[Exposure, ...]:
    """Public rows of the table on servers (Hetzner's load balancer stands in for the lb hosts), the first of each
    port; optional rows only when their flag is on."""
    rows: dict[tuple[int, str], Exposure] = {}
    for row in table:
        if row.public and set(row.groups) - {LB_GROUP} and (row.enabled_by is None or bool(flags.get(row.enabled_by))):
            rows.setdefault((row.port, row.protocol), row)
    return tuple(rows.values())


def inbound_rules(
    flags: Mapping[str, object], ssh_admin_allowlist: Iterable[str] = (),
    table: Iterable[Exposure] = EXPOSURE,
) -> tuple[InboundRule, ...]:
    """One rule per public row; sshd only from the admin allowlist when one is set."""
    allowlist = tuple(sorted({str(ip_network(source, strict=False)) for source in ssh_admin_allowlist}))
    rules = []
    for row in public_rows(flags, table):
        sources = allowlist if (row.service == "ssh" and allowlist) else ANYWHERE
        rules.append(InboundRule(str(row.port), row.protocol, sources, f"{row.service}: {row.summary}"[:255]))
    return tuple(rules)


def rules_payload(rules: Iterable[InboundRule]) -> list[dict[str, object]]:
    """Rules in the API's shape, for comparison with what a firewall holds."""
    return [
        {"direction": "in", "protocol": r.protocol, "port": r.port,
         "source_ips": list(r.source_ips), "destination_ips": [], "description": r.description}
        for r in rules
    ]
