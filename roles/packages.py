"""Packages role: the Debian packages of every role a host gets, in one apt transaction, before those roles run.

One transaction runs dpkg's triggers and systemd's reloads once instead of once per role. The role comes after
the firewall is loaded, so no daemon a package starts (PostgreSQL, Redis, Postfix, Dovecot) listens unfirewalled,
and after the db host's data volume is mounted where PostgreSQL's package creates its cluster
(postyard/topology.py). The base, firewall and LUKS roles, which run before it, install their own.

Each role names its packages in its `packages(data)`; the role's settings are read there with the role's own
defaults, which pyinfra applies only inside that role's deploy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt

from postyard.topology import host_groups, roles_for_groups
from roles import (
    app_runtime,
    dovecot,
    host_report,
    opendkim,
    postfix,
    postgresql,
    postgresql_backup,
    redis,
    tls,
)

__all__ = ["ROLE_PACKAGES", "deploy_packages", "host_packages"]

ROLE_PACKAGES: dict[str, Callable[[Any], tuple[str, ...]]] = {
    "postgresql": postgresql.packages,
    "postgresql_backup": postgresql_backup.packages,
    "redis": redis.packages,
    "tls": tls.packages,
    "app_runtime": app_runtime.packages,
    "opendkim": opendkim.packages,
    "dovecot": dovecot.packages,
    "postfix": postfix.packages,
    "host_report": host_report.packages,
}


def host_packages(roles: Iterable[str], data: Any) -> list[str]:
    """The packages of these roles, in role order, each once."""
    found: list[str] = []
    for role in roles:
        if role in ROLE_PACKAGES:
            found += [package for package in ROLE_PACKAGES[role](data) if package not in found]
    return found


@deploy("Packages")
def deploy_packages() -> None:
    packages = host_packages(roles_for_groups(host_groups(host.groups)), host.data)
    apt.packages(name="Install the packages of every role", packages=packages, no_recommends=True)
