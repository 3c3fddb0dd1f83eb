"""Firewall role: nftables, inbound dropped by default, openings rendered from the exposure table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, systemd

from postyard.exposure import Exposure, exposures_for_host
from postyard.topology import host_groups
from roles.support.peers import host_roles, peers_by_group
from roles.support.staging import install_validated_template
from roles.support.systemd_units import enabled_and_running

__all__ = ["DEFAULTS", "Opening", "deploy_firewall", "firewall_context"]

DEFAULTS: dict[str, Any] = {
    # Interface facing the internet, and the one on the private network (Hetzner: eth0, enp7s0).
    "public_interface": "eth0",
    "private_interface": "eth1",
    # This host's address on the private network; peers' addresses open private ports.
    "private_address": None,
    # Sources allowed to reach sshd; empty means anyone (keys are still required).
    "ssh_admin_allowlist": [],
    # Optional rows of the exposure table (see postyard/exposure.py).
    "acme_http01": False,
    "mailboxes_enabled": False,
}


@dataclass(frozen=True)
class Opening:
    """One accept rule: a port, and an nft source match ("" accepts any source)."""

    port: int
    protocol: str
    service: str
    source_match: str = ""


def source_matches(sources: Iterable[str]) -> list[str]:
    """nft matches for a set of addresses or networks, one per address family."""
    sources = sorted(set(sources))
    v4 = [s for s in sources if ":" not in s]
    v6 = [s for s in sources if ":" in s]
    return [f"{family} saddr {{ {', '.join(found)} }}" for family, found in (("ip", v4), ("ip6", v6)) if found]


def _openings(row: Exposure, sources: Iterable[str] | None) -> list[Opening]:
    """None means any source; an empty collection means no source, so no opening."""
    if sources is None:
        return [Opening(row.port, row.protocol, row.service)]
    return [Opening(row.port, row.protocol, row.service, match) for match in source_matches(sources)]


def firewall_context(
    groups: Iterable[str],
    roles: Iterable[str],
    flags: Mapping[str, Any],
    peers: Mapping[str, Iterable[str]],
    public_interface: str,
    private_interface: str,
    ssh_admin_allowlist: Iterable[str] = (),
) -> dict[str, Any]:
    """Template context for nftables.conf: public and private openings of a host.

    peers maps each group to the private addresses of the *other* hosts in it.
    A private port opens only to peers in its client groups; with none, it stays closed.
    """
    rows = exposures_for_host(groups, roles, flags)
    allowlist = tuple(ssh_admin_allowlist)
    public: list[Opening] = []
    private: list[Opening] = []
    for row in rows:
        if row.public:
            restricted = row.service == "ssh" and allowlist
            public += _openings(row, allowlist if restricted else None)
        else:
            private += _openings(row, [a for g in row.clients for a in peers.get(g, ())])
    return {
        "public_interface": public_interface,
        "private_interface": private_interface,
        "public_openings": public,
        "private_openings": private,
    }


@deploy("Firewall", data_defaults=DEFAULTS)
def deploy_firewall() -> None:
    apt.packages(name="Install nftables", packages=["nftables"], no_recommends=True)
    groups = host_groups(host.groups)
    context = firewall_context(
        groups=groups,
        roles=host_roles(),
        flags={key: host.data.get(key) for key in ("acme_http01", "mailboxes_enabled")},
        peers=peers_by_group(),
        public_interface=host.data.public_interface,
        private_interface=host.data.private_interface,
        ssh_admin_allowlist=host.data.ssh_admin_allowlist,
    )
    ruleset = install_validated_template(
        "templates/firewall/nftables.conf.j2", "/etc/nftables.conf",
        validate="nft -c -f {path}", mode="755", **context,
    )
    systemd.service(
        name="Load the firewall", service="nftables.service",
        reloaded=True, _if=ruleset.did_change,
    )
    enabled_and_running(name="Enable the firewall at boot", service="nftables.service")
