"""The testbeds `pytest --testbed` boots: every group on one host (single), and the `ha` topology (three db hosts
under Patroni, two mail hosts, two api hosts behind a balancer). The suites written for `split` (every group on
hosts of its own) run on `ha` as well, or on a `split` testbed when one is named; those whose subject is the
clustered topology run only on `ha`.

POSTYARD_SESSION_TESTBEDS renames them (`name:topology,...`), so a second test run on the same
machine does not collide with the first.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from postyard.inventory_hosts import InfraHost
from postyard.testbed.inventory import testbed_name

__all__ = ["CLUSTER_TOPOLOGIES", "SESSION_TESTBEDS", "SESSION_TOPOLOGIES", "TESTBED_FIXTURES", "session_testbed_name",
           "session_testbeds", "used_testbed"]

SESSION_TOPOLOGIES = ("single", "split", "ha")
CLUSTER_TOPOLOGIES = ("split", "ha")  # every group on hosts of its own: the suites written for split run on both

# The suites' fixtures for a session testbed -> the topologies each accepts
TESTBED_FIXTURES: dict[str, tuple[str, ...]] = {
    "single_testbed": ("single",), "split_testbed": CLUSTER_TOPOLOGIES, "ha_testbed": ("ha",),
}


def session_testbeds(spec: str | None) -> dict[str, str]:
    """Testbed names and topologies from `name:topology,...`; the defaults when unset."""
    if not spec:
        return {"ci": "single", "cis": "ha"}
    pairs = [item.split(":", 1) for item in spec.split(",") if item.strip()]
    if any(len(pair) != 2 or pair[1] not in SESSION_TOPOLOGIES for pair in pairs):
        raise ValueError(f"POSTYARD_SESSION_TESTBEDS: expected name:{'|'.join(SESSION_TOPOLOGIES)},... not {spec!r}")
    return {name.strip(): topology for name, topology in pairs}


SESSION_TESTBEDS: dict[str, str] = session_testbeds(os.environ.get("POSTYARD_SESSION_TESTBEDS"))


def session_testbed_name(topologies: tuple[str, ...]) -> str | None:
    """The first session testbed of one of these topologies, if the session has one."""
    return next((name for name, topology in SESSION_TESTBEDS.items() if topology in topologies), None)


def used_testbed(params: Mapping[str, object], fixtures: Iterable[str]) -> str | None:
    """The session testbed a test works on, from its parameters (a host of the inventory; `each_testbed`'s
    topology) or else its fixtures; None for a test that needs none. A test that would use two is refused: the
    testbeds' suites run side by side, each testbed's in one process."""
    for value in params.values():
        if isinstance(value, InfraHost):
            return testbed_name(value.environment)
    if "each_testbed" in params:
        return session_testbed_name(("single",) if params["each_testbed"] == "single" else CLUSTER_TOPOLOGIES)
    fixtures = set(fixtures)
    used = {name for fixture, topologies in TESTBED_FIXTURES.items() if fixture in fixtures
            for name in [session_testbed_name(topologies)] if name}
    if len(used) > 1:
        raise ValueError(f"uses two testbeds ({', '.join(sorted(used))}); a test may work on one")
    return next(iter(used), None)
