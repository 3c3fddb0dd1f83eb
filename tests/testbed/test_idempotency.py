"""Deploys are idempotent, and a changed setting restarts only the service it belongs to."""

from __future__ import annotations

import os

from postyard.deployer import REPO, run_deploy
from postyard.ssh import ssh_run
from postyard.testbed.cgroup_quirk import deploy_past_the_cgroup_quirk

INVENTORY = REPO / "inventory" / "testbed.py"


def test_second_deploy_changes_nothing(session_hosts):
    result = run_deploy(INVENTORY, env={"POSTYARD_TESTBED": os.environ["POSTYARD_TESTBED"]}, echo=False)
    print(f"no-op redeploy of {len(session_hosts)} hosts: {result.operations} operations in {result.seconds:.1f} s")
    assert result.operations > 0
    assert result.changed == 0


def _deploy(session_hosts, data: dict[str, str] | None = None) -> None:
    deploy_past_the_cgroup_quirk(INVENTORY, {"POSTYARD_TESTBED": os.environ["POSTYARD_TESTBED"]},
                                 session_hosts.values(), data)


def main_pid(host, unit: str) -> str:
    return ssh_run(host, ["systemctl", "show", "--property=MainPID", "--value", unit]).strip()


def test_a_changed_redis_setting_restarts_redis_and_nothing_else(session_hosts):
    node = session_hosts["node1"]
    units = ("redis-server.service", "postgresql@15-main.service", "ssh.service")
    before = {unit: main_pid(node, unit) for unit in units}
    try:
        _deploy(session_hosts, {"redis_maxmemory": "80mb"})
        after = {unit: main_pid(node, unit) for unit in units}
    finally:
        _deploy(session_hosts)
    assert after["redis-server.service"] != before["redis-server.service"]
    assert {u: after[u] for u in units[1:]} == {u: before[u] for u in units[1:]}
