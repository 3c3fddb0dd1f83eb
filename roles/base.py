"""Base role: hostname, packages up to date, unattended security upgrades, time sync,
hardened sshd and bounded journald, on every host."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from pyinfra import host
from pyinfra.api import deploy, operation
from pyinfra.facts.apt import SimulateOperationWillChange, noninteractive_apt
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, server, systemd

from roles.support.peers import private_name_peers
from roles.support.staging import install_validated_template, jinja_options
from roles.support.systemd_units import enabled_and_running

__all__ = ["DEFAULTS", "deploy_base", "hosts_context", "sshd_context", "journald_context", "unattended_context"]

DEFAULTS: dict[str, Any] = {
    # Fully qualified host name; the inventory name when unset.
    "hostname": None,
    # NTP servers for systemd-timesyncd (Hetzner's own servers are a good choice there).
    "time_servers": ["0.debian.pool.ntp.org", "1.debian.pool.ntp.org", "2.debian.pool.ntp.org"],
    # journald: disk cap, free space to leave, and how long to keep entries.
    "journald_max_use": "1G",
    "journald_keep_free": "2G",
    "journald_max_retention": "3month",
    # sshd: users allowed to log in (keys only, always), and whether TCP forwarding is
    # allowed (only a bastion host needs it).
    "ssh_allow_users": ["root"],
    "ssh_allow_tcp_forwarding": False,
    # unattended-upgrades: security updates only; reboot automatically when one needs it.
    "unattended_reboot": False,
    "unattended_reboot_time": "03:30",
}

# adduser: packages that create their service users (postfix, dovecot) make system users with it.
# Package lists younger than this (seconds) are not refreshed, and installed packages not upgraded.
PACKAGE_LISTS_MAX_AGE = 3600
# What apt.update touches, and reads for that age (pyinfra's, as APT::Periodic's).
PACKAGE_LISTS_STAMP = "/var/lib/apt/periodic/update-success-stamp"
BASE_PACKAGES = ["openssh-server", "systemd-timesyncd", "unattended-upgrades", "ca-certificates", "adduser"]


def hosts_context(fqdn: str, private_peers: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """private_peers: (name, private address) of the hosts this one reaches by name on the private network."""
    return {"fqdn": fqdn, "short_name": fqdn.split(".")[0], "private_peers": private_peers or []}


def sshd_context(data: Any) -> dict[str, Any]:
    return {
        "allow_users": list(data.ssh_allow_users),
        "allow_tcp_forwarding": bool(data.ssh_allow_tcp_forwarding),
    }


def journald_context(data: Any) -> dict[str, Any]:
    return {
        "max_use": data.journald_max_use,
        "keep_free": data.journald_keep_free,
        "max_retention": data.journald_max_retention,
    }


def unattended_context(data: Any) -> dict[str, Any]:
    return {"reboot": bool(data.unattended_reboot), "reboot_time": data.unattended_reboot_time}


def runs_in_container() -> bool:
    """Containers share the machine's clock: time sync is the machine's job there."""
    virt = host.get_fact(Command, command="systemd-detect-virt --container || true")
    return virt.strip() not in ("", "none")


@operation()
def upgrade_or_refresh_again() -> Generator[str, None, None]:
    """`apt-get upgrade` when a dry run says it would change something. If it fails, the package lists'
    stamp goes with it, so that the next deploy refreshes the lists and upgrades again rather than skip the
    upgrade for the lists' hour."""
    changes = host.get_fact(SimulateOperationWillChange, "upgrade")
    if changes and not any(changes[k] for k in ("upgraded", "newly_installed", "removed", "not_upgraded")):
        host.noop("no package to upgrade")
        return
    yield f"{noninteractive_apt('upgrade')} || {{ rm -f {PACKAGE_LISTS_STAMP}; exit 1; }}"


@deploy("Base", data_defaults=DEFAULTS)
def deploy_base() -> None:
    fqdn = host.data.hostname or host.name
    server.hostname(name="Set the host name", hostname=fqdn)
    files.template(
        name="Upload /etc/hosts", src="templates/base/hosts.j2", dest="/etc/hosts", mode="644",
        jinja_env_kwargs=jinja_options(), **hosts_context(fqdn, private_name_peers()),
    )

    refresh = apt.update(name="Refresh package lists", cache_time=PACKAGE_LISTS_MAX_AGE)
    # Upgrade against lists this run refreshes: a deploy within the hour after one that upgraded has nothing
    # new to apply (unattended-upgrades applies security updates meanwhile), and apt's dry run costs 0.4 s.
    if refresh.will_change:
        upgrade_or_refresh_again(name="Upgrade installed packages")
    apt.packages(name="Install base packages", packages=BASE_PACKAGES, no_recommends=True)

    _unattended_upgrades()
    _time_sync()
    _journald()
    _sshd()


def _unattended_upgrades() -> None:
    for src, dest in (
        ("templates/base/20auto-upgrades.j2", "/etc/apt/apt.conf.d/20auto-upgrades"),
        ("templates/base/52postyard-unattended-upgrades.j2",
         "/etc/apt/apt.conf.d/52postyard-unattended-upgrades"),
    ):
        files.template(
            name=f"Upload {dest}", src=src, dest=dest, mode="644",
            jinja_env_kwargs=jinja_options(), **unattended_context(host.data),
        )
    for timer in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        enabled_and_running(name=f"Enable {timer}", service=timer)


def _time_sync() -> None:
    config = files.template(
        name="Upload /etc/systemd/timesyncd.conf.d/postyard.conf",
        src="templates/base/timesyncd.conf.j2",
        dest="/etc/systemd/timesyncd.conf.d/postyard.conf",
        mode="644", jinja_env_kwargs=jinja_options(), servers=list(host.data.time_servers),
    )
    in_container = runs_in_container()
    systemd.service(
        name="Enable systemd-timesyncd",
        service="systemd-timesyncd.service",
        enabled=True,
        running=None if in_container else True,
    )
    if not in_container:
        systemd.service(
            name="Restart systemd-timesyncd", service="systemd-timesyncd.service",
            restarted=True, _if=config.did_change,
        )


def _journald() -> None:
    config = files.template(
        name="Upload /etc/systemd/journald.conf.d/postyard.conf",
        src="templates/base/journald.conf.j2",
        dest="/etc/systemd/journald.conf.d/postyard.conf",
        mode="644", jinja_env_kwargs=jinja_options(), **journald_context(host.data),
    )
    systemd.service(
        name="Restart systemd-journald", service="systemd-journald.service",
        restarted=True, _if=config.did_change,
    )


def _sshd() -> None:
    config = install_validated_template(
        "templates/base/sshd_config.j2", "/etc/ssh/sshd_config",
        validate="/usr/sbin/sshd -t -f {path}", **sshd_context(host.data),
    )
    systemd.service(name="Reload sshd", service="ssh.service", reloaded=True, _if=config.did_change)
    enabled_and_running(name="Enable sshd", service="ssh.service")
