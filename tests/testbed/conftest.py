"""Tests that drive the testbed itself: they need root, and most need `pytest --testbed`."""

from __future__ import annotations

import os

import pytest

from postyard.appliance_client import TestbedAppliance
from postyard.inventory_hosts import InfraHost
from postyard.testbed import state as testbed_state
from postyard.testbed.hosts import hosts_of_testbed
from postyard.testbed.suites import CLUSTER_TOPOLOGIES, TESTBED_FIXTURES, session_testbed_name
from tests.testbed.cluster_support import Cluster


def _session_testbed(request: pytest.FixtureRequest, *topologies: str) -> testbed_state.TestbedState:
    if not request.config.getoption("--testbed"):
        pytest.skip("needs --testbed")
    name = session_testbed_name(topologies)
    if name is None:
        pytest.skip(f"no {' or '.join(topologies)} testbed in this session (POSTYARD_SESSION_TESTBEDS)")
    found = testbed_state.load(name)
    assert found is not None, f"testbed {name} is not up"
    return found


@pytest.fixture(scope="session")
def single_testbed(request: pytest.FixtureRequest) -> testbed_state.TestbedState:
    """The session's one-host testbed (every group on node1)."""
    return _session_testbed(request, *TESTBED_FIXTURES["single_testbed"])


@pytest.fixture(scope="session")
def split_testbed(request: pytest.FixtureRequest) -> testbed_state.TestbedState:
    """The session's testbed with every group on hosts of its own, on a private network: split (db1, cache1,
    mail1, api1, api2, lb1), or ha, which adds db2, db3 and mail2 and clusters the database: then db1 leads, so
    that the suites reaching the db host by name reach the primary."""
    found = _session_testbed(request, *CLUSTER_TOPOLOGIES)
    if found.topology == "ha":
        cluster = Cluster(TestbedAppliance(found))
        if cluster.lead_from_first_member():
            cluster.wait_for_login_lookups()
    return found


@pytest.fixture(scope="session")
def ha_testbed(request: pytest.FixtureRequest) -> testbed_state.TestbedState:
    """The session's ha testbed: db1-db3 under Patroni, cache1, mail1, mail2, api1, api2, lb1."""
    return _session_testbed(request, *TESTBED_FIXTURES["ha_testbed"])


@pytest.fixture(scope="module", params=["single", "split"])
def each_testbed(request: pytest.FixtureRequest) -> testbed_state.TestbedState:
    """Each of the session's testbeds in turn (a module's tests run on both topologies)."""
    return request.getfixturevalue(f"{request.param}_testbed")


@pytest.fixture(scope="session")
def single_hosts(single_testbed) -> dict[str, InfraHost]:
    """The one-host testbed's hosts (node1), by short name."""
    return hosts_of_testbed(single_testbed.name)


@pytest.fixture(scope="session")
def split_hosts(split_testbed) -> dict[str, InfraHost]:
    """The split (or ha) testbed's hosts, by short name."""
    return hosts_of_testbed(split_testbed.name)


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
