"""Options shared by the suites: --testbed boots and deploys a testbed for the session."""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from postyard.deployer import REPO, DeployResult
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


# Suites that need no host run first, while the session's testbeds are deployed.
HOSTLESS_SUITES = ("tests/unit/", "tests/hetzner/")

_deploying: Future[DeployResult] | None = None


def is_hostless(item: pytest.Item) -> bool:
    return item.nodeid.startswith(HOSTLESS_SUITES)


def deploy_session_testbeds(inventory: Path, names: str) -> DeployResult:
    log_path = bed_directory(next(iter(SESSION_TESTBEDS))) / "deploy.log"
    return deploy_past_the_cgroup_quirk(inventory, {"POSTYARD_TESTBED": names}, load_hosts(inventory),
                                        log_path=log_path)


def pytest_configure(config: pytest.Config) -> None:
    global _deploying
    if not config.getoption("--testbed"):
        return
    names = ",".join(SESSION_TESTBEDS)
    inventory = REPO / "inventory" / "testbed.py"
    started = time.monotonic()
    try:
        for name, topology in SESSION_TESTBEDS.items():
            bed.up(name, topology, log=log)
    except BaseException:
        take_down(config)
        raise
    log(f"hosts up in {time.monotonic() - started:.1f} s; deploying while the suites that need no host run")
    os.environ["POSTYARD_TESTBED"] = names
    config.option.inventory = str(inventory)
    _deploying = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deploy").submit(
        deploy_session_testbeds, inventory, names)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not is_hostless(item))  # stable: each group keeps its order


def pytest_runtest_setup(item: pytest.Item) -> None:
    global _deploying
    if _deploying is None or is_hostless(item):
        return
    deploying, _deploying = _deploying, None
    try:
        result = deploying.result()
    except Exception as error:
        pytest.exit(f"deploying the session testbeds failed: {error}", returncode=1)
    with item.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        log(f"deployed: {result.changed} of {result.operations} operations changed in {result.seconds:.1f} s")


def take_down(config: pytest.Config) -> None:
    if not config.getoption("--keep-testbed"):
        for name in SESSION_TESTBEDS:
            bed.down(name, log=log)


def pytest_unconfigure(config: pytest.Config) -> None:
    if not config.getoption("--testbed"):
        return
    take_down(config)  # a deploy still under way fails at once on hosts that are gone
    if _deploying is not None:
        _deploying.exception()


def pytest_report_header(config: pytest.Config) -> list[str]:
    if config.getoption("inventory"):
        return [f"inventory: {config.getoption('inventory')}"]
    return ["inventory: none (host suites skipped; pass --testbed or --inventory)"]
