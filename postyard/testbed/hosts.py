"""A testbed's hosts as the verification suite sees them: the testbed inventory, one testbed's part of it."""

from __future__ import annotations

from postyard.deployer import REPO
from postyard.inventory_hosts import InfraHost, load_hosts
from postyard.testbed.inventory import testbed_name

__all__ = ["TESTBED_INVENTORY", "hosts_of_testbed"]

TESTBED_INVENTORY = REPO / "inventory" / "testbed.py"


def hosts_of_testbed(name: str) -> dict[str, InfraHost]:
    """The hosts of testbed `name` (one of those POSTYARD_TESTBED names), by short name."""
    return {host.name.split(".")[0]: host for host in load_hosts(TESTBED_INVENTORY)
            if testbed_name(host.environment) == name}
