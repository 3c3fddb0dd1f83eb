"""Deploying to nspawn hosts past systemd's container quirk (docs/testbed.md): a unit restarted at once may
fail with status 219/CGROUP because systemd could not remove its cgroup. That failure alone earns one more
deploy; any other failure is raised as it is. Real hosts do not have the quirk."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from postyard.deployer import DeployError, DeployResult, run_deploy
from postyard.inventory_hosts import InfraHost
from postyard.ssh import ssh_run

__all__ = ["QUIRK", "deploy_past_the_cgroup_quirk"]

QUIRK = "status=219/CGROUP"


def deploy_past_the_cgroup_quirk(inventory: Path, env: dict[str, str], hosts: Iterable[InfraHost],
                                 data: dict[str, str] | None = None, log_path: Path | None = None) -> DeployResult:
    """`run_deploy`, run once more when it failed only because a unit hit the quirk on one of `hosts`."""
    hosts = list(hosts)
    since = [(host, ssh_run(host, ["date", "+%Y-%m-%d %H:%M:%S"]).strip()) for host in hosts]
    try:
        return run_deploy(inventory, env=env, echo=False, data=data, log_path=log_path)
    except DeployError:
        logged = "".join(ssh_run(host, ["journalctl", "--no-pager", "--since", start, "-o", "cat"])
                         for host, start in since)
        if QUIRK not in logged:
            raise
        return run_deploy(inventory, env=env, echo=False, data=data, log_path=log_path)
