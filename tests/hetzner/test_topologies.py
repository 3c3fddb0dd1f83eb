"""Hetzner provisions the topologies it was built for; any other is refused before anything is created."""

from __future__ import annotations

import pytest

from postyard.targets import HETZNER_TOPOLOGIES, TargetError, make_target
from postyard.topology import TOPOLOGIES


@pytest.mark.parametrize("topology", sorted(set(TOPOLOGIES) - set(HETZNER_TOPOLOGIES)))
def test_a_topology_not_built_for_hetzner_is_refused_with_the_ones_that_are(topology):
    logged: list[str] = []
    with pytest.raises(TargetError, match="testbed only so far; on Hetzner choose single or split"):
        make_target("hetzner").provision(topology, logged.append)
    assert logged == []
