"""Options shared by the suites: --testbed boots and deploys a testbed for the session."""

from __future__ import annotations

import os
import time

import pytest

from postyard.deployer import REPO, run_deploy
from postyard.testbed import bed

TESTBED_TIMINGS: dict[str, float] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("postyard")
    group.addoption("--testbed", action="store_true",
                    help="boot a testbed, deploy to it, run the host suites against it, remove it")
    group.addoption("--testbed-name", default="ci", help="name of that testbed (default: ci)")
    group.addoption("--keep-testbed", action="store_true", help="leave the testbed running afterwards")
    group.addoption("--inventory", default=None, help="pyinfra inventory for tests/infra")
    group.addoption("--outside-netns", default=None,
                    help="network namespace to probe from (the testbed's outside vantage point)")


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("--testbed"):
        return
    name = config.getoption("--testbed-name")
    started = time.monotonic()
    inventory = REPO / "inventory" / "testbed.py"
    try:
        state = bed.up(name, "single", log=lambda line: print(f"[testbed] {line}", flush=True))
        TESTBED_TIMINGS["hosts_up"] = time.monotonic() - started
        result = run_deploy(inventory, env={"POSTYARD_TESTBED": name}, echo=False)
    except BaseException:
        bed.down(name, log=lambda line: print(f"[testbed] {line}"))
        raise
    os.environ["POSTYARD_TESTBED"] = name
    TESTBED_TIMINGS["first_deploy"] = result.seconds
    print(f"[testbed] deployed: {result.changed} of {result.operations} operations changed "
          f"in {result.seconds:.1f} s", flush=True)
    config.option.inventory = str(inventory)
    config.option.outside_netns = state.outside_netns


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.getoption("--testbed") and not config.getoption("--keep-testbed"):
        bed.down(config.getoption("--testbed-name"), log=lambda line: print(f"[testbed] {line}"))


def pytest_report_header(config: pytest.Config) -> list[str]:
    if config.getoption("inventory"):
        return [f"inventory: {config.getoption('inventory')}"]
    return ["inventory: none (host suites skipped; pass --testbed or --inventory)"]
