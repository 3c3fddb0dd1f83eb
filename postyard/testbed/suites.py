"""The testbeds `pytest --testbed` boots: every group on one host (single), and every group on hosts of its own
(split). An `ha` testbed (a clustered database, two mail hosts) takes split's place when named: the suites written
for split run on it as well, and those whose subject is the clustered topology run only on it.

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
        return {"ci": "single", "cis": "split"}
    pairs = [item.split(":", 1) for item in spec.split(",") if item.strip()]
    if any(len(pair) != 2 or pair[1] not in SESSION_TOPOLOGIES for pair in pairs):
        raise ValueError(f"POSTYARD_SESSION_TESTBEDS: expected name:{'|'.join(SESSION_TOPOLOGIES)},... not {spec!r}")
    return {name.strip(): topology for name, topology in pairs}


SESSION_TESTBEDS: dict[str, str] = session_testbeds(os.environ.get("POSTYARD_SESSION_TESTBEDS"))
