"""Options shared by the suites: --testbed boots and deploys a testbed for the session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest

from postyard.deployer import REPO
from postyard.testbed import bed
from postyard.testbed.hosts import TESTBED_INVENTORY
from postyard.testbed.session_deploy import read_outcome, wait_for_outcome
from postyard.testbed.state import testbed_dir as bed_directory
from postyard.testbed.suites import CLUSTER_TOPOLOGIES, SESSION_TESTBEDS, used_testbed
from tests.xdist_testbeds import TestbedScheduling, write_groups


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("postyard")
    group.addoption("--testbed", action="store_true",
                    help="boot two testbeds (one host; the ha topology), deploy to them, run the "
                         "host suites against them, remove them")
    group.addoption("--keep-testbed", action="store_true", help="leave the testbed running afterwards")
    group.addoption("--inventory", default=None, help="pyinfra inventory for tests/infra")



def log(line: str) -> None:
    print(f"[testbed] {line}", flush=True)


# Suites that need no host run first, while the session's testbeds are deployed.
HOSTLESS_SUITES = ("tests/hetzner/", "tests/unit/")
# With pytest-xdist, run last on their testbed: they leave it after failovers and power cuts, not as a deploy left it.
FAULT_SUITES = ("tests/testbed/test_faults",)
# Suites whose printed figures (the fault tables, the restore drills' timings) the summary repeats when they pass.
FIGURE_SUITES = (*FAULT_SUITES, "tests/testbed/test_point_in_time")
_figures: list[tuple[str, str]] = []
DEPLOY_TIMEOUT = 1800  # seconds; a fresh deploy of the one-host and ha testbeds takes 380-510
DEPLOY_HANDOFF = "POSTYARD_SESSION_DEPLOY"  # "pid:result file" of the session deploy, for every test process

_deploying: subprocess.Popen[bytes] | None = None
_deploy_result: Path | None = None
_deploy_output: IO[str] | None = None
_deploy_checked = False


def is_hostless(item: pytest.Item) -> bool:
    return item.nodeid.startswith(HOSTLESS_SUITES)


def is_worker(config: pytest.Config) -> bool:
    """A pytest-xdist worker: the main process boots and deploys, its workers run the tests."""
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    global _deploying, _deploy_result, _deploy_output
    if not config.getoption("--testbed"):
        return
    config.option.inventory = str(TESTBED_INVENTORY)
    if is_worker(config):
        return  # the main process has booted the testbeds and set the environment before starting workers
    names = ",".join(SESSION_TESTBEDS)
    started = time.monotonic()
    try:
        for name, topology in SESSION_TESTBEDS.items():
            bed.up(name, topology, log=log)
    except BaseException:
        take_down(config)
        raise
    log(f"hosts up in {time.monotonic() - started:.1f} s; deploying while the suites that need no host run")
    os.environ["POSTYARD_TESTBED"] = names
    directory = bed_directory(next(iter(SESSION_TESTBEDS)))
    _deploy_result = directory / "deploy.result"
    _deploy_result.unlink(missing_ok=True)
    # what the deploy process itself says, should it end without writing its result
    _deploy_output = open(directory / "deploy.output", "w")  # noqa: SIM115 (open while the deploy runs)
    # A process of its own, started with the environment as it is now: the host-less suites patch theirs.
    _deploying = subprocess.Popen(
        [sys.executable, "-m", "postyard.testbed.session_deploy", str(TESTBED_INVENTORY), names,
         str(directory / "deploy.log"), str(_deploy_result)],
        cwd=REPO, env=dict(os.environ), stdout=_deploy_output, stderr=subprocess.STDOUT,
        start_new_session=True)  # its own process group: stopped with pyinfra and everything it started
    os.environ[DEPLOY_HANDOFF] = f"{_deploying.pid}:{_deploy_result}"


def testbed_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    try:
        return used_testbed(callspec.params if callspec else {}, item.fixturenames)
    except ValueError as error:
        raise pytest.UsageError(f"{item.nodeid}: {error}") from None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--testbed"):
        return
    groups = {item.nodeid: testbed_of(item) for item in items}
    if not is_worker(config):
        items.sort(key=lambda item: not is_hostless(item))  # stable: each group keeps its order
        return
    # Host-less suites first; then the clustered testbed's, the longest, so that a worker starts it first.
    clustered = {name for name, topology in SESSION_TESTBEDS.items() if topology in CLUSTER_TOPOLOGIES}
    items.sort(key=lambda item: (not is_hostless(item), groups[item.nodeid] not in clustered,
                                 item.nodeid.startswith(FAULT_SUITES)))  # stable: each group keeps its order
    first = next(iter(SESSION_TESTBEDS))
    write_groups(groups_path(), {item.nodeid: groups[item.nodeid] or hostless_group(item, first) for item in items})


def hostless_group(item: pytest.Item, testbed: str) -> str:
    """A host-less suite's group (the suite, whole); a test of tests/testbed that needs no session testbed runs
    with `testbed`'s tests, never beside them."""
    return "hostless-" + item.nodeid.split("/")[1] if is_hostless(item) else testbed


def groups_path() -> Path:
    return bed_directory(next(iter(SESSION_TESTBEDS))) / "xdist-groups.json"


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: runs without it (-p no:xdist) need none
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> TestbedScheduling | None:
    """With --testbed, one worker runs all of a testbed's tests, in order (tests/xdist_testbeds.py)."""
    return TestbedScheduling(config, log, groups_path()) if config.getoption("--testbed") else None


def pytest_runtest_setup(item: pytest.Item) -> None:
    global _deploy_checked
    handoff = os.environ.get(DEPLOY_HANDOFF)
    if _deploy_checked or handoff is None or is_hostless(item) or not item.config.getoption("--testbed"):
        return
    pid, result = handoff.split(":", 1)
    outcome = wait_for_outcome(Path(result), int(pid), DEPLOY_TIMEOUT)
    if outcome.ok:
        _deploy_checked = True
        return
    reason = f"deploying the session testbeds failed: {outcome.summary[-3000:]}"
    if is_worker(item.config):
        # pytest.exit in a pytest-xdist worker ends in an internal error that hides the reason
        item.session.shouldstop = reason
        pytest.fail(reason, pytrace=False)
    pytest.exit(reason, returncode=1)


def take_down(config: pytest.Config) -> None:
    if not config.getoption("--keep-testbed"):
        for name in SESSION_TESTBEDS:
            bed.down(name, log=log)


def pytest_unconfigure(config: pytest.Config) -> None:
    if not config.getoption("--testbed") or is_worker(config):
        return
    if _deploying is not None and _deploying.poll() is None:
        log("the session ended before the deploy did: it is stopped unfinished")
        os.killpg(_deploying.pid, signal.SIGTERM)
        try:
            _deploying.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(_deploying.pid, signal.SIGKILL)
    take_down(config)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed and report.nodeid.startswith(FIGURE_SUITES):
        printed = "".join(content for name, content in report.sections if "stdout" in name)
        if printed.strip():
            _figures.append((report.nodeid, printed.strip()))


def pytest_terminal_summary(terminalreporter) -> None:
    for nodeid, printed in _figures:  # a failure shows its output already; a pass, only here
        terminalreporter.write_sep("-", f"figures: {nodeid}")
        terminalreporter.write_line(printed)
    outcome = read_outcome(_deploy_result) if _deploy_result else None
    if outcome is not None:
        terminalreporter.write_line(f"[testbed] deploy {'done' if outcome.ok else 'failed'}: {outcome.summary}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    if config.getoption("inventory"):
        return [f"inventory: {config.getoption('inventory')}"]
    return ["inventory: none (host suites skipped; pass --testbed or --inventory)"]
