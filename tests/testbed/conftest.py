"""Tests that drive the testbed itself: they need root, and most need `pytest --testbed`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from postyard.deployer import REPO
from postyard.inventory_hosts import InfraHost, load_hosts
from postyard.testbed import state as testbed_state
from postyard.testbed.suites import SESSION_TESTBEDS

INVENTORY = REPO / "inventory" / "testbed.py"


def _session_testbed(request: pytest.FixtureRequest, topology: str) -> testbed_state.TestbedState:
    if not request.config.getoption("--testbed"):
        pytest.skip("needs --testbed")
    name = next((name for name, kind in SESSION_TESTBEDS.items() if kind == topology), None)
    if name is None:
        pytest.skip(f"no {topology} testbed in this session (POSTYARD_SESSION_TESTBEDS)")
    found = testbed_state.load(name)
    assert found is not None, f"testbed {name} is not up"
    return found


@pytest.fixture(scope="session")
def single_testbed(request: pytest.FixtureRequest) -> testbed_state.TestbedState:
    """The session's one-host testbed (every group on node1)."""
    return _session_testbed(request, "single")


@pytest.fixture(scope="session")
def split_testbed(request: pytest.FixtureRequest) -> testbed_state.TestbedState:
    """The session's split testbed: db1, cache1, mail1, api1, api2 on a private network."""
    return _session_testbed(request, "split")


@pytest.fixture(scope="module", params=["single", "split"])
def each_testbed(request: pytest.FixtureRequest) -> testbed_state.TestbedState:
    """Each of the session's testbeds in turn (a module's tests run on both topologies)."""
    return request.getfixturevalue(f"{request.param}_testbed")


@pytest.fixture(scope="session")
def session_hosts(single_testbed, split_testbed) -> dict[str, InfraHost]:
    """Every host of the session's testbeds, by short name, as the verification suite sees them."""
    return {host.name.split(".")[0]: host for host in load_hosts(Path(INVENTORY))}


@pytest.fixture
def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("the testbed needs root")


@pytest.fixture(scope="module")
def monkeypatch_module():
    """A MonkeyPatch undone when the module's tests are done (for module-scoped fixtures)."""
    patch = pytest.MonkeyPatch()
    yield patch
    patch.undo()
