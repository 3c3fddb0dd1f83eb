"""What the deploy set up survives a reboot of the host."""

from __future__ import annotations

import json
import time

import pytest

from postyard.exposure import EXPOSURE
from postyard.probe import Vantage
from postyard.ssh import ssh_run
from postyard.testbed import bed

PROBE_PORT = 8999


@pytest.fixture(scope="module")
def rebooted(single_testbed, single_hosts):
    node = single_hosts["node1"]
    bed.reboot(single_testbed.name, "node1", log=lambda _: None)
    ssh_run(node, ["sh", "-c", "systemctl is-system-running --wait || true"])
    return node


def test_firewall_is_loaded_again_after_reboot(rebooted):
    listing = json.loads(ssh_run(rebooted, ["nft", "-j", "list", "chain", "inet", "postyard", "input"]))
    chain = next(item["chain"] for item in listing["nftables"] if "chain" in item)
    assert chain["policy"] == "drop"


def test_only_public_ports_answer_after_reboot(rebooted):
    ports = [row.port for row in EXPOSURE] + [PROBE_PORT]
    expected = {port: rebooted.outside_state(port) for port in ports}
    # Services of Type=simple count as started before they listen (the API imports for seconds).
    deadline = time.monotonic() + 60
    while (scan := Vantage(rebooted.outside_netns).scan_tcp(rebooted.address, ports)) != expected:
        if time.monotonic() > deadline:
            break
        time.sleep(2)
    assert scan == expected


@pytest.mark.parametrize("unit", ["postgresql@15-main.service", "redis-server.service", "postyard-backup.timer"])
def test_services_are_back_after_reboot(rebooted, unit):
    assert ssh_run(rebooted, ["systemctl", "is-active", unit]).strip() == "active"
