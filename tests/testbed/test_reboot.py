"""What the deploy set up survives a reboot of the host."""

from __future__ import annotations

import json
import subprocess

from postyard.exposure import EXPOSURE, public_ports_open_on
from postyard.probe import Vantage
from postyard.testbed import bed
from postyard.topology import roles_for_groups


def ssh(state, address: str, command: str) -> str:
    return subprocess.run(
        ["ssh", "-i", str(state.ssh_key), "-o", f"UserKnownHostsFile={state.known_hosts}",
         "-o", "BatchMode=yes", f"root@{address}", command],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout


def test_firewall_is_loaded_again_after_reboot(session_testbed):
    first = session_testbed.hosts[0]
    bed.reboot(session_testbed.name, first.name)
    ssh(session_testbed, first.public_address, "systemctl is-system-running --wait || true")
    listing = json.loads(ssh(session_testbed, first.public_address, "nft -j list chain inet postyard input"))
    chain = next(item["chain"] for item in listing["nftables"] if "chain" in item)
    assert chain["policy"] == "drop"
    public = set(public_ports_open_on(first.groups, roles_for_groups(first.groups), {}))
    ports = [row.port for row in EXPOSURE] + [8999]
    scan = Vantage(session_testbed.outside_netns).scan_tcp(first.public_address, ports)
    assert scan == {port: "open" if (port, "tcp") in public else "filtered" for port in ports}
