"""The testbeds `pytest --testbed` boots: every group on one host (single), and the ha topology, where every group
has hosts of its own, the database is clustered and there are two mail hosts. The suites written for the split
topology run on whichever of split and ha the session has.

POSTYARD_SESSION_TESTBEDS renames them (`name:topology,...`), so a second test run on the same
machine does not collide with the first.
"""

from __future__ import annotations

import os

__all__ = ["SESSION_TESTBEDS", "SESSION_TOPOLOGIES", "session_testbeds"]

SESSION_TOPOLOGIES = ("single", "split", "ha")


def session_testbeds(spec: str | None) -> dict[str, str]:
    """Testbed names and topologies from `name:topology,...`; the defaults when unset."""
    if not spec:
        return {"ci": "single", "cis": "ha"}
    pairs = [item.split(":", 1) for item in spec.split(",") if item.strip()]
    if any(len(pair) != 2 or pair[1] not in SESSION_TOPOLOGIES for pair in pairs):
        raise ValueError(f"POSTYARD_SESSION_TESTBEDS: expected name:{'|'.join(SESSION_TOPOLOGIES)},... not {spec!r}")
    return {name.strip(): topology for name, topology in pairs}


SESSION_TESTBEDS: dict[str, str] = session_testbeds(os.environ.get("POSTYARD_SESSION_TESTBEDS"))
