"""Testbeds come up with several hosts and go away without a trace, also after failures."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from postyard.testbed import bed, machine, rootfs
from postyard.testbed.commands import CommandError
from postyard.testbed.state import CACHE_ROOT
from postyard.topology import TOPOLOGIES

NAME = "life"


@pytest.fixture
def clean_slate(require_root):
    bed.down(NAME, log=lambda _: None)
    yield
    bed.down(NAME, log=lambda _: None)


def reaches(netns: str, address: str, port: int) -> bool:
    probe = f"import socket; socket.create_connection(('{address}', {port}), 3)"
    return subprocess.run(["ip", "netns", "exec", netns, "python3", "-c", probe],
                          capture_output=True, check=False).returncode == 0


def test_split_topology_hosts_reach_each_other_on_the_private_network(clean_slate):
    state = bed.up(NAME, "split", log=lambda _: None)
    assert [h.name for h in state.platform_hosts] == [plan.name for plan in TOPOLOGIES["split"]]
    db, api = state.platform_hosts[0], state.platform_hosts[3]
    assert reaches(api.netns, db.private_address, 22)
    assert not reaches(state.outside_netns, db.private_address, 22)  # the private bridge is not routed


def test_teardown_leaves_nothing_behind(clean_slate):
    state = bed.up(NAME, "single", log=lambda _: None)
    assert bed.leftovers(NAME)
    bed.down(NAME, log=lambda _: None)
    assert bed.leftovers(NAME) == {}
    assert not os.path.exists(state.directory)


def test_teardown_after_a_crash_leaves_nothing_behind(clean_slate):
    state = bed.up(NAME, "single", log=lambda _: None)
    for pid in machine.nspawn_pids_for(f"{state.prefix}-"):
        os.kill(pid, signal.SIGKILL)
    bed.down(NAME, log=lambda _: None)
    assert bed.leftovers(NAME) == {}


def test_a_failed_bring_up_removes_what_it_created(clean_slate, tmp_path):
    # a damaged root filesystem cache fails the first host, after bridges, NAT and the internet host exist
    rootfs.cache_path(tmp_path).write_bytes(b"not a tarball")
    internet = rootfs.ensure_cached_rootfs(CACHE_ROOT, log=lambda _: None, flavour="internet")
    rootfs.cache_path(tmp_path, "internet").symlink_to(internet)  # built once already; not again here
    with pytest.raises(CommandError, match="tar"):
        bed.up(NAME, "single", log=lambda _: None, cache_dir=tmp_path)
    assert bed.leftovers(NAME) == {}
