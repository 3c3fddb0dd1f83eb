"""Inventory groups, the roles each group gets, and the testbed's host layouts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["API_NAME_LABEL", "GROUPS", "GROUP_ROLES", "INVENTORY_GROUPS", "LB_GROUP", "PITR_REPOSITORY_GROUP",
           "SCHEMA_GROUP", "TOPOLOGIES", "HostPlan", "host_groups", "is_balanced", "is_clustered",
           "roles_for_groups"]

# The platform's groups: a single host is in all of them.
GROUPS: tuple[str, ...] = ("mail", "db", "cache", "api")
# The load balancer in front of several api hosts: Hetzner's own on Hetzner Cloud (no host of the inventory), a host
# running HAProxy on the testbed, which stands in for it.
LB_GROUP = "lb"
INVENTORY_GROUPS: tuple[str, ...] = (*GROUPS, LB_GROUP)
# Behind a load balancer, clients reach the API by this name under the deployment's domain, on every target.
API_NAME_LABEL = "api"

# Roles every host gets first, then the roles of each group, then the roles every host gets last (its status
# report needs the database role and schema the others set up), in the order deploy.py applies them.
COMMON_ROLES: tuple[str, ...] = ("base", "firewall")
FINAL_ROLES: tuple[str, ...] = ("host_report",)
# "packages" installs the Debian packages of all the host's roles in one transaction (roles/packages.py): after the
# firewall, so no daemon a package starts listens unfirewalled, and after "luks" mounts the volume where
# PostgreSQL's package creates its cluster.
GROUP_ROLES: dict[str, tuple[str, ...]] = {
    "db": ("luks", "packages", "postgresql", "postgresql_backup", "pgbackrest"),
    "cache": ("packages", "redis"),
    LB_GROUP: ("packages", "load_balancer"),
    "mail": ("packages", "tls", "app_runtime", "opendkim", "schema", "dovecot", "postfix", "mail_services"),
    "api": ("packages", "tls", "app_runtime", "api"),
}

# Behind a load balancer, each api host also runs the proxy that takes the balancer's connections, from before
# its certificate is asked for: the proxy relays ACME's HTTP-01 requests to whichever api host's certbot asks.
BALANCED_GROUP_ROLES: dict[str, tuple[str, ...]] = {"api": ("packages", "api_proxy", "tls", "app_runtime", "api")}

# The first host of this group, by name, runs the migrations and the operators' commands: the only host
# besides the db host that holds the database owner's credential (never an api host).
SCHEMA_GROUP = "mail"


# Where the database is clustered (several db hosts), Patroni runs PostgreSQL with etcd on the db hosts, and
# every host reaches the primary through its own HAProxy (postgresql_router). The members share one pgBackRest
# repository, on the cache host, off every db host.
CLUSTERED_SUBSTITUTES: dict[str, tuple[str, ...]] = {
    "packages": ("packages", "postgresql_router"),
    "postgresql": ("etcd", "patroni"),
    "pgbackrest": ("pgbackrest_member",),
    "redis": ("pgbackrest_repository", "redis"),
}
# Never on a db host: the repository is there to outlive the loss of one.
OFF_DB_HOSTS: tuple[str, ...] = ("pgbackrest_repository",)
# The group whose first host keeps a clustered database's pgBackRest repository (the substitutes above).
PITR_REPOSITORY_GROUP = "cache"


def is_clustered(db_hosts: int) -> bool:
    """Whether an environment with this many db hosts runs its database under Patroni."""
    return db_hosts > 1


def is_balanced(lb_hosts: int, balancer_addresses: object) -> bool:
    """Whether a load balancer is in front of an environment's api hosts: lb hosts of its own (the testbed), or
    addresses provisioning names (Hetzner's balancer)."""
    return lb_hosts > 0 or bool(balancer_addresses)


def roles_for_groups(groups: tuple[str, ...] | list[str], clustered: bool = False,
                     balanced: bool = False) -> tuple[str, ...]:
    """The roles a host in these groups gets, common ones first and final ones last, each once.

    A load balancer host gets neither the database router nor the status report: it holds no credential of the
    database, as Hetzner's load balancer, which it stands in for, holds none."""
    ordered: list[str] = list(COMMON_ROLES)
    for group in GROUP_ROLES:
        if group in groups:
            wanted = BALANCED_GROUP_ROLES.get(group, GROUP_ROLES[group]) if balanced else GROUP_ROLES[group]
            for role in wanted:
                substitutes = CLUSTERED_SUBSTITUTES.get(role, (role,)) if clustered and group in GROUPS else (role,)
                for chosen in substitutes:
                    if chosen in OFF_DB_HOSTS and "db" in groups:
                        continue
                    if chosen not in ordered:
                        ordered.append(chosen)
    final = FINAL_ROLES if set(groups) & set(GROUPS) else ()
    return (*ordered, *final)


@dataclass(frozen=True)
class HostPlan:
    """One host of a layout: its short name and its inventory groups."""

    name: str
    groups: tuple[str, ...]


TOPOLOGIES: dict[str, tuple[HostPlan, ...]] = {
    "single": (HostPlan("node1", GROUPS),),
    "split": (
        HostPlan("db1", ("db",)),
        HostPlan("cache1", ("cache",)),
        HostPlan("mail1", ("mail",)),
        HostPlan("api1", ("api",)),
        HostPlan("api2", ("api",)),
        HostPlan("lb1", (LB_GROUP,)),
    ),
    "ha": (
        HostPlan("db1", ("db",)),
        HostPlan("db2", ("db",)),
        HostPlan("db3", ("db",)),
        HostPlan("cache1", ("cache",)),
        HostPlan("mail1", ("mail",)),
        HostPlan("mail2", ("mail",)),
        HostPlan("api1", ("api",)),
        HostPlan("api2", ("api",)),
        HostPlan("lb1", (LB_GROUP,)),
    ),
}


def host_groups(names: Iterable[str]) -> tuple[str, ...]:
    """The platform's and the load balancer's groups among an inventory host's groups (inventories add their own)."""
    names = set(names)
    return tuple(group for group in INVENTORY_GROUPS if group in names)
