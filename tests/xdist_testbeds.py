"""pytest-xdist scheduling by session testbed: one worker runs every test of a testbed, in order, so that no two
tests work on one testbed at once, while the other testbed's tests run on another worker.

xdist's own `loadgroup` cannot carry the groups here: it renames each test's node id, which this pytest keeps
elsewhere. Instead the workers write {node id: group} as they collect, and the scheduler reads it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

__all__ = ["TestbedScheduling", "write_groups"]


def write_groups(path: Path, groups: dict[str, str]) -> None:
    partial = path.with_name(f"{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(groups))
    os.replace(partial, path)  # every worker writes the same groups; the scheduler reads one whole


class TestbedScheduling(LoadScopeScheduling):
    """xdist's scope scheduling, a test's scope being its group (a testbed, or a host-less suite)."""

    __test__ = False  # a scheduler, not a test class

    def __init__(self, config: pytest.Config, log: object, groups_path: Path) -> None:
        super().__init__(config, log)
        self._groups_path = groups_path
        self._groups: dict[str, str] | None = None

    def _split_scope(self, nodeid: str) -> str:
        if self._groups is None:
            self._groups = json.loads(self._groups_path.read_text())  # written before the workers' collections
        return self._groups.get(nodeid, nodeid)
