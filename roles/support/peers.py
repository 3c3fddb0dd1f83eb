"""The other hosts of this host's environment, by group, as their private addresses."""

from __future__ import annotations

from pyinfra import host, inventory
from pyinfra.api.host import Host

from postyard.topology import LB_GROUP, PITR_REPOSITORY_GROUP, host_groups, is_balanced, is_clustered, roles_for_groups

__all__ = ["behind_load_balancer", "database_is_clustered", "environment_hosts", "environment_members",
           "first_address_in_environment", "first_in_environment", "host_roles",
           "peers_by_group", "private_name_peers"]


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
    # Hetzner's load balancer is no host of the inventory: provisioning names its private address.
    peers.setdefault(LB_GROUP, []).extend(host.data.get("load_balancer_private_addresses") or [])
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


def first_address_in_environment(group: str) -> list[str]:
    """The private address of the first host, by name, of the group in this host's environment (the
    one that does its once-per-environment job); none when that is this host or it has no private address."""
    environment = host.data.get("environment")
    hosts = sorted((other for other in inventory
                    if other.data.get("environment") == environment and group in host_groups(other.groups)),
                   key=lambda other: other.name)
    if not hosts or hosts[0].name == host.name or not hosts[0].data.get("private_address"):
        return []
    return [hosts[0].data.private_address]


def environment_hosts(group: str) -> list[Host]:
    """Every inventory host of the group in this host's environment, this one included."""
    environment = host.data.get("environment")
    return [other for other in inventory
            if other.data.get("environment") == environment and group in host_groups(other.groups)]


def environment_members(group: str) -> list[tuple[str, str]]:
    """(host name, private address) of every host of the group in this host's environment, this one included,
    by name."""
    return sorted((other.data.get("hostname") or other.name, other.data.get("private_address") or "")
                  for other in environment_hosts(group))


def private_name_peers() -> list[tuple[str, str]]:
    """(host name, private address) of the hosts this one reaches by name over the private network, for
    /etc/hosts: pgBackRest checks its peer's certificate against a host name, never an address. Where the
    database is clustered the members reach the repository host, and the repository host every member."""
    roles = host_roles()
    if "pgbackrest_member" in roles:
        return environment_members(PITR_REPOSITORY_GROUP)
    if "pgbackrest_repository" in roles:
        return environment_members("db")
    return []


def database_is_clustered() -> bool:
    """Whether this host's environment has several db hosts: then Patroni runs them, with etcd, and every
    other host reaches the primary through its own HAProxy."""
    return is_clustered(len(environment_members("db")))


def behind_load_balancer() -> bool:
    """Whether a load balancer sends clients to this environment's api hosts."""
    return is_balanced(len(environment_members(LB_GROUP)), host.data.get("load_balancer_private_addresses"))


def host_roles() -> tuple[str, ...]:
    """The roles this host gets, from its groups, whether its environment's database is clustered and whether a
    load balancer is in front of its api hosts."""
    return roles_for_groups(host_groups(host.groups), clustered=database_is_clustered(),
                            balanced=behind_load_balancer())
