"""Deploys are idempotent, and a changed setting restarts only the service it belongs to.

Each deploy here names one testbed: the other testbed's suites run meanwhile, and must not see it restarted."""

from __future__ import annotations

from postyard.deployer import run_deploy
from postyard.ssh import ssh_run
from postyard.testbed.cgroup_quirk import deploy_past_the_cgroup_quirk
from postyard.testbed.hosts import TESTBED_INVENTORY, hosts_of_testbed


def test_second_deploy_changes_nothing(each_testbed):
    result = run_deploy(TESTBED_INVENTORY, env={"POSTYARD_TESTBED": each_testbed.name}, echo=False)
    print(f"no-op redeploy of {each_testbed.topology}: {result.operations} operations in {result.seconds:.1f} s")
    assert result.operations > 0
    assert result.changed == 0


def _deploy(testbed_name: str, data: dict[str, str] | None = None) -> None:
    deploy_past_the_cgroup_quirk(TESTBED_INVENTORY, {"POSTYARD_TESTBED": testbed_name},
                                 hosts_of_testbed(testbed_name).values(), data)


def main_pid(host, unit: str) -> str:
    return ssh_run(host, ["systemctl", "show", "--property=MainPID", "--value", unit]).strip()


def test_a_changed_redis_setting_restarts_redis_and_nothing_else(single_testbed, single_hosts):
    node = single_hosts["node1"]
    units = ("redis-server.service", "postgresql@15-main.service", "ssh.service")
    before = {unit: main_pid(node, unit) for unit in units}
    try:
        _deploy(single_testbed.name, {"redis_maxmemory": "80mb"})
        after = {unit: main_pid(node, unit) for unit in units}
    finally:
        _deploy(single_testbed.name)
    assert after["redis-server.service"] != before["redis-server.service"]
    assert {u: after[u] for u in units[1:]} == {u: before[u] for u in units[1:]}
