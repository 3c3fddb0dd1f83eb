"""Bridges, network namespaces, veth pairs and the NAT table of a testbed, all named by its prefix."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from postyard.testbed.commands import CommandError, run, succeeds

__all__ = [
    "check_subnet_is_free",
    "create_bridge",
    "create_netns",
    "attach_netns",
    "create_nat_table",
    "delete_link",
    "delete_netns",
    "delete_nft_table",
    "links_with_prefix",
    "netns_with_prefix",
    "nft_table_exists",
]

NETNS_DIR = Path("/run/netns")


def check_subnet_is_free(subnet: str) -> None:
    """Refuse a subnet that overlaps a route this machine already has."""
    wanted = ipaddress.ip_network(subnet)
    for route in json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]) or "[]"):
        dst = route.get("dst", "")
        if dst in ("", "default") or "/" not in dst and not dst[0].isdigit():
            continue
        try:
            existing = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if existing.prefixlen > 0 and existing.overlaps(wanted):
            raise CommandError(f"subnet {subnet} overlaps an existing route to {dst}; pick another")


def link_exists(name: str) -> bool:
    return succeeds(["ip", "link", "show", "dev", name])


def create_bridge(name: str, address: str | None) -> None:
    run(["ip", "link", "add", name, "type", "bridge"])
    if address:
        run(["ip", "addr", "add", address, "dev", name])
    run(["ip", "link", "set", name, "up"])


def create_netns(name: str) -> None:
    run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])


def attach_netns(
    netns: str, host_side: str, inner_name: str, bridge: str, address: str, gateway: str | None
) -> None:
    """Join netns to bridge with a veth pair named host_side outside and inner_name inside."""
    run(["ip", "link", "add", host_side, "type", "veth", "peer", "name", inner_name, "netns", netns])
    run(["ip", "link", "set", host_side, "master", bridge, "up"])
    run(["ip", "-n", netns, "addr", "add", address, "dev", inner_name])
    run(["ip", "-n", netns, "link", "set", inner_name, "up"])
    if gateway:
        run(["ip", "-n", netns, "route", "add", "default", "via", gateway])


def delete_link(name: str) -> None:
    """Delete a link; one that vanished meanwhile (a veth whose peer went with its netns) is fine."""
    if not succeeds(["ip", "link", "delete", name]) and link_exists(name):
        raise CommandError(f"could not delete link {name}")


def delete_netns(name: str) -> None:
    if (NETNS_DIR / name).exists():
        run(["ip", "netns", "delete", name])


def links_with_prefix(prefix: str) -> list[str]:
    links = json.loads(run(["ip", "-j", "link", "show"]) or "[]")
    return sorted(link["ifname"] for link in links if link["ifname"].startswith(prefix))


def netns_with_prefix(prefix: str) -> list[str]:
    if not NETNS_DIR.exists():
        return []
    return sorted(path.name for path in NETNS_DIR.iterdir() if path.name.startswith(prefix))


def nft_table_exists(table: str) -> bool:
    return succeeds(["nft", "list", "table", "ip", table])


def create_nat_table(table: str, subnet: str, bridge: str) -> None:
    """Masquerade the testbed out of this machine, for DNS and the package registry only."""
    ruleset = f"""
table ip {table} {{
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname "{bridge}" oifname "{bridge}" accept
        iifname "{bridge}" udp dport 53 accept
        iifname "{bridge}" tcp dport {{ 53, 80, 443 }} accept
        oifname "{bridge}" ct state established,related accept
        iifname "{bridge}" drop
        oifname "{bridge}" drop
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {subnet} oifname != "{bridge}" masquerade
    }}
}}
"""
    run(["nft", "-f", "-"], input=ruleset)


def delete_nft_table(table: str) -> None:
    if nft_table_exists(table):
        run(["nft", "delete", "table", "ip", table])
