"""Options shared by the suites: --testbed boots and deploys a testbed for the session."""

from __future__ import annotations

import os
import time

import pytest

from postyard.deployer import REPO
from postyard.inventory_hosts import load_hosts
from postyard.testbed import bed
from postyard.testbed.cgroup_quirk import deploy_past_the_cgroup_quirk
from postyard.testbed.state import testbed_dir as bed_directory
from postyard.testbed.suites import SESSION_TESTBEDS


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("postyard")
    group.addoption("--testbed", action="store_true",
                    help="boot two testbeds (one host; the split topology), deploy to them, run the "
                         "host suites against them, remove them")
    group.addoption("--keep-testbed", action="store_true", help="leave the testbed running afterwards")
    group.addoption("--inventory", default=None, help="pyinfra inventory for tests/infra")



def log(line: str) -> None:
    print(f"[testbed] {line}", flush=True)


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("--testbed"):
        return
    names = ",".join(SESSION_TESTBEDS)
    inventory = REPO / "inventory" / "testbed.py"
    started = time.monotonic()
    try:
        for name, topology in SESSION_TESTBEDS.items():
            bed.up(name, topology, log=log)
        log(f"hosts up in {time.monotonic() - started:.1f} s")
        log_path = bed_directory(next(iter(SESSION_TESTBEDS))) / "deploy.log"
        os.environ["POSTYARD_TESTBED"] = names
        result = deploy_past_the_cgroup_quirk(inventory, {"POSTYARD_TESTBED": names}, load_hosts(inventory),
                                              log_path=log_path)
    except BaseException:
        if not config.getoption("--keep-testbed"):
            for name in SESSION_TESTBEDS:
                bed.down(name, log=log)
        raise
    os.environ["POSTYARD_TESTBED"] = names
    log(f"deployed: {result.changed} of {result.operations} operations changed in {result.seconds:.1f} s")
    config.option.inventory = str(inventory)


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.getoption("--testbed") and not config.getoption("--keep-testbed"):
        for name in SESSION_TESTBEDS:
            bed.down(name, log=log)


def pytest_report_header(config: pytest.Config) -> list[str]:
    if config.getoption("inventory"):
        return [f"inventory: {config.getoption('inventory')}"]
    return ["inventory: none (host suites skipped; pass --testbed or --inventory)"]
