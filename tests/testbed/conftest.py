"""Tests that drive the testbed itself: they need root, and most need `pytest --testbed`."""

from __future__ import annotations

import os

import pytest

from postyard.testbed import state as testbed_state


@pytest.fixture(scope="session")
def session_testbed(request: pytest.FixtureRequest) -> testbed_state.TestbedState:
    """The testbed that `pytest --testbed` booted and deployed for this session."""
    if not request.config.getoption("--testbed"):
        pytest.skip("needs --testbed")
    found = testbed_state.load(request.config.getoption("--testbed-name"))
    assert found is not None
    return found


@pytest.fixture
def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("the testbed needs root")
