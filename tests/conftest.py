"""Options shared by the suites: --testbed boots and deploys a testbed for the session."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import IO

import pytest

from postyard.deployer import REPO
from postyard.testbed import bed
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
DEPLOY_TIMEOUT = 1800  # seconds; a fresh deploy of both testbeds takes about 290 (with ha for split, 450)

_deploying: subprocess.Popen[str] | None = None
_deploy_output: IO[str] | None = None  # a file, not a pipe: nobody reads it until the deploy ends


def is_hostless(item: pytest.Item) -> bool:
    return item.nodeid.startswith(HOSTLESS_SUITES)


def pytest_configure(config: pytest.Config) -> None:
    global _deploying, _deploy_output
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
    log_path = bed_directory(next(iter(SESSION_TESTBEDS))) / "deploy.log"
    # A process of its own, started with the environment as it is now: the host-less suites patch theirs.
    _deploy_output = tempfile.TemporaryFile(mode="w+")
    _deploying = subprocess.Popen(
        [sys.executable, "-m", "postyard.testbed.session_deploy", str(inventory), names, str(log_path)],
        cwd=REPO, env=dict(os.environ), stdout=_deploy_output, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)  # its own process group: stopped with pyinfra and everything it started


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--testbed"):
        items.sort(key=lambda item: not is_hostless(item))  # stable: each group keeps its order


def pytest_runtest_setup(item: pytest.Item) -> None:
    global _deploying
    if _deploying is None or is_hostless(item):
        return
    deploying, _deploying = _deploying, None
    try:
        deploying.wait(timeout=DEPLOY_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(deploying.pid, signal.SIGKILL)
        pytest.exit(f"deploying the session testbeds took more than {DEPLOY_TIMEOUT} s", returncode=1)
    assert _deploy_output is not None
    _deploy_output.seek(0)
    output = _deploy_output.read().strip()
    if deploying.returncode != 0:
        pytest.exit(f"deploying the session testbeds failed: {output[-3000:]}", returncode=1)
    result = json.loads(output.splitlines()[-1])
    with item.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        log(f"deployed: {result['changed']} of {result['operations']} operations changed "
            f"in {result['seconds']:.1f} s")


def take_down(config: pytest.Config) -> None:
    if not config.getoption("--keep-testbed"):
        for name in SESSION_TESTBEDS:
            bed.down(name, log=log)


def pytest_unconfigure(config: pytest.Config) -> None:
    if not config.getoption("--testbed"):
        return
    if _deploying is not None and _deploying.poll() is None:
        log("the session ended before any test needed a host: the deploy is stopped unfinished")
        os.killpg(_deploying.pid, signal.SIGTERM)
        try:
            _deploying.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(_deploying.pid, signal.SIGKILL)
    take_down(config)


def pytest_report_header(config: pytest.Config) -> list[str]:
    if config.getoption("inventory"):
        return [f"inventory: {config.getoption('inventory')}"]
    return ["inventory: none (host suites skipped; pass --testbed or --inventory)"]
