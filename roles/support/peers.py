"""The other hosts of this host's environment, by group, as their private addresses."""

from __future__ import annotations

from pyinfra import host, inventory

from postyard.topology import host_groups

__all__ = ["peers_by_group", "first_in_environment"]


def peers_by_group() -> dict[str, list[str]]:
    """{group: private addresses of the other hosts in it}, within this host's environment.

    One inventory may hold several environments (two testbeds, staging and production); a host
    never opens anything to hosts of another.
    """
    environment = host.data.get("environment")
    peers: dict[str, list[str]] = {}
    for other in inventory:
        if other.name == host.name or other.data.get("environment") != environment:
            continue
        if not other.data.get("private_address"):
            continue
        for group in host_groups(other.groups):
            peers.setdefault(group, []).append(other.data.private_address)
    return peers


def first_in_environment(groups: tuple[str, ...]) -> bool:
    """Whether this host comes first, by name, among its environment's hosts in any of the groups:
    the one host that does a once-per-environment job."""
    environment = host.data.get("environment")
    names = sorted(
        other.name for other in inventory
        if other.data.get("environment") == environment and set(host_groups(other.groups)) & set(groups)
    )
    return bool(names) and names[0] == host.name
