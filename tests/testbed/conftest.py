"""Tests that drive the testbed itself: they need root, and most need `pytest --testbed`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from postyard.appliance_client import TestbedAppliance
from postyard.deployer import REPO
from postyard.inventory_hosts import InfraHost, load_hosts
from postyard.testbed import state as testbed_state
from postyard.testbed.suites import SESSION_TESTBEDS
from tests.testbed.cluster_support import Cluster

INVENTORY = REPO / "inventory" / "testbed.py"


def _session_testbed(request: pytest.FixtureRequest, *topologies: str) -> testbed_state.TestbedState:
    if not request.config.getoption("--testbed"):
        pytest.skip("needs --testbed")
    name = next((name for name, kind in SESSION_TESTBEDS.items() if kind in topologies), None)
    if name is None:
        pytest.skip(f"no {' or '.join(topologies)} testbed in this session (POSTYARD_SESSION_TESTBEDS)")
    found = testbed_state.load(name)
    assert found is not None, f"testbed {name} is not up"
    return found


@pytest.fixture(scope="session")
def single_testbed(request: pytest.FixtureRequest) -> testbed_state.TestbedState:
    """The session's one-host testbed (every group on node1)."""
    return _session_testbed(request, "single")


@pytest.fixture(scope="session")
def split_testbed(request: pytest.FixtureRequest) -> testbed_state.TestbedState:
    """The session's testbed with every group on hosts of its own, on a private network: split (db1, cache1,
    mail1, api1, api2, lb1), or ha, which adds db2, db3 and mail2 and clusters the database: then db1 leads, so
    that the suites reaching the db host by name reach the primary."""
    found = _session_testbed(request, "split", "ha")
    if found.topology == "ha":
        Cluster(TestbedAppliance(found)).lead_from_first_member()
    return found


@pytest.fixture(scope="session")
def ha_testbed(request: pytest.FixtureRequest) -> testbed_state.TestbedState:
    """The session's ha testbed: db1-db3 under Patroni, cache1, mail1, mail2, api1, api2, lb1."""
    return _session_testbed(request, "ha")


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
