"""Packages role: the Debian packages of every role a host gets, in one apt transaction, before those roles run.

One transaction runs dpkg's triggers and systemd's reloads once instead of once per role. The role comes after
the firewall is loaded, so no daemon a package starts (PostgreSQL, Redis, Postfix, Dovecot) listens unfirewalled,
and after the db host's data volume is mounted where PostgreSQL's package creates its cluster
(postyard/topology.py). The base, firewall and LUKS roles, which run before it, install their own.

While the transaction runs, a `policy-rc.d` keeps the packages from starting their daemons (PostgreSQL
excepted): each role starts its daemon once, with its configuration, instead of restarting one that had
started with the package's defaults (OpenDKIM's restart alone took 3.7 s).

Each role names its packages in its `packages(data)`; the role's settings are read there with the role's own
defaults, which pyinfra applies only inside that role's deploy.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Generator, Iterable
from typing import Any

from pyinfra import host
from pyinfra.api import deploy, operation
from pyinfra.facts.apt import noninteractive_apt
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import FindInFile

from roles import (
    api_proxy,
    app_runtime,
    dovecot,
    etcd,
    host_report,
    load_balancer,
    opendkim,
    patroni,
    pgbackrest,
    pgbackrest_member,
    pgbackrest_repository,
    postfix,
    postgresql,
    postgresql_backup,
    postgresql_router,
    redis,
    tls,
)
from roles.support.peers import host_roles

__all__ = ["POLICY_MARKER", "POLICY_RC_D", "ROLE_PACKAGES", "STARTED_BY_PACKAGES", "deploy_packages", "held_back",
           "held_back_install", "host_packages", "policy_rc_d"]

# Debian's hook that invoke-rc.d and deb-systemd-invoke ask before a package starts a service (exit 101: no).
POLICY_RC_D = "/usr/sbin/policy-rc.d"
# Started by their package all the same: the PostgreSQL role checks its new configuration on the running
# server before it restarts it.
STARTED_BY_PACKAGES = ("postgresql",)
POLICY_MARKER = "# Written by postyard for one apt transaction."

ROLE_PACKAGES: dict[str, Callable[[Any], tuple[str, ...]]] = {
    "postgresql": postgresql.packages,
    "pgbackrest": pgbackrest.packages,
    "pgbackrest_member": pgbackrest_member.packages,
    "pgbackrest_repository": pgbackrest_repository.packages,
    "etcd": etcd.packages,
    "patroni": patroni.packages,
    "postgresql_router": postgresql_router.packages,
    "postgresql_backup": postgresql_backup.packages,
    "redis": redis.packages,
    "tls": tls.packages,
    "app_runtime": app_runtime.packages,
    "opendkim": opendkim.packages,
    "dovecot": dovecot.packages,
    "postfix": postfix.packages,
    "host_report": host_report.packages,
    "load_balancer": load_balancer.packages,
    "api_proxy": api_proxy.packages,
}


def host_packages(roles: Iterable[str], data: Any) -> list[str]:
    """The packages of these roles, in role order, each once."""
    found: list[str] = []
    for role in roles:
        if role in ROLE_PACKAGES:
            found += [package for package in ROLE_PACKAGES[role](data) if package not in found]
    return found


def policy_rc_d() -> str:
    """The policy-rc.d of the transaction: the services in STARTED_BY_PACKAGES start, no other."""
    allowed = "|".join(f"{name}|{name}.service|{name}@*" for name in STARTED_BY_PACKAGES)
    return "\n".join((
        "#!/bin/sh", POLICY_MARKER,
        'while [ "${1#--}" != "$1" ]; do shift; done  # invoke-rc.d passes --quiet first',
        f'case "$1" in {allowed}) exit 0 ;; esac', "exit 101", "",
    ))


def held_back(command: str, policy: str = POLICY_RC_D) -> str:
    """Run command with policy_rc_d in place, removed again when it ends or the shell is signalled (dash
    runs an EXIT trap only on exit). A policy-rc.d of the host's own is left as it is, and applies."""
    return (f"if [ -e {policy} ]; then {command}; else "
            f"trap 'rm -f {policy}' EXIT && trap 'exit 129' HUP INT TERM PIPE && "
            f"printf %s {shlex.quote(policy_rc_d())} > {policy} && chmod 755 {policy} && {command}; fi")


def held_back_install(packages: Iterable[str]) -> str:
    return held_back(noninteractive_apt("install --no-install-recommends " + " ".join(map(shlex.quote, packages))))


# What a role runs right after the transaction that installs some of its packages, given the packages that
# transaction installed.
AFTER_INSTALL: dict[str, Callable[[list[str]], list[str]]] = {"patroni": patroni.after_install}


@operation(is_idempotent=True)
def packages_installed(packages: list[str], roles: tuple[str, ...] = ()) -> Generator[str, None, None]:
    """Remove a policy-rc.d of ours that a killed deploy left behind (it would hold back the daemons of every
    later upgrade), then install what is missing of the packages in one transaction, their daemons held back,
    and run what the roles need right after it."""
    if host.get_fact(FindInFile, path=POLICY_RC_D, pattern=POLICY_MARKER):
        yield f"rm -f {POLICY_RC_D}"
    installed = host.get_fact(DebPackages)
    missing = [package for package in packages if package not in installed]
    if missing:
        yield held_back_install(missing)
        for role in roles:
            yield from AFTER_INSTALL.get(role, lambda _: [])(missing)
    else:
        host.noop("every package is installed")


@deploy("Packages")
def deploy_packages() -> None:
    roles = host_roles()
    packages_installed(name="Install the packages of every role", packages=host_packages(roles, host.data),
                       roles=roles)
