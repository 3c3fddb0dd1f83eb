"""The firewall, read back on each host and proven by scanning it from the outside vantage point."""

from __future__ import annotations

import json
import time

import pytest

from postyard.exposure import EXPOSURE, Exposure

PROBE_PORT = 8999  # in no row of the exposure table


@pytest.fixture(scope="session")
def full_scans() -> dict[str | None, dict[str, dict[int, str]]]:
    """Scans already made, by vantage point: one nmap run covers every host seen from it."""
    return {}


@pytest.fixture(scope="session")
def full_scan(full_scans, outside, infra_host, all_hosts) -> dict[int, str]:
    """Every TCP port of the host as seen from outside."""
    if outside.netns not in full_scans:
        peers = [h.address for h in all_hosts if h.outside_netns == outside.netns]
        full_scans[outside.netns] = outside.scan_hosts(peers, "1-65535")
    return full_scans[outside.netns][infra_host.address]


def test_firewall_is_enabled_and_loaded(host):
    nftables = host.service("nftables")
    assert nftables.is_enabled
    assert nftables.is_running


def test_inbound_policy_is_drop(host):
    listing = json.loads(host.check_output("nft -j list chain inet postyard input"))
    chains = [item["chain"] for item in listing["nftables"] if "chain" in item]
    assert chains[0]["hook"] == "input"
    assert chains[0]["policy"] == "drop"


def test_boot_time_ruleset_is_valid(host):
    host.run_expect([0], "nft -c -f /etc/nftables.conf")


@pytest.mark.parametrize("row", EXPOSURE, ids=lambda row: f"{row.port}-{row.service}")
def test_exposure_row_as_seen_from_outside(full_scan, infra_host, row: Exposure):
    if row.public and row.port in infra_host.listening_ports:
        assert full_scan[row.port] == "open"
    elif row.public and row.port in infra_host.public_ports:
        # the firewall lets it through; its listener runs only on demand
        assert full_scan[row.port] in ("open", "closed")
    elif not any(other.public and other.port == row.port for other in infra_host.exposures):
        assert full_scan[row.port] in ("closed", "filtered")
    else:
        pytest.skip(f"port {row.port} is also public here: its public row is the one seen from outside")


def test_no_port_outside_the_table_answers(full_scan, infra_host):
    open_ports = {port for port, state in full_scan.items() if state == "open"}
    assert infra_host.listening_ports <= open_ports <= infra_host.public_ports


def test_listener_on_an_unlisted_port_is_unreachable_from_outside(host, outside, infra_host):
    unit = "postyard-probe-listener"
    host.run_expect(
        [0], "systemd-run --unit=%s --collect python3 -m http.server %s --bind 0.0.0.0", unit, str(PROBE_PORT)
    )
    try:
        deadline = time.monotonic() + 15
        while not host.socket(f"tcp://0.0.0.0:{PROBE_PORT}").is_listening:
            assert time.monotonic() < deadline, "the probe listener did not start"
            time.sleep(0.3)
        assert outside.scan_tcp(infra_host.address, [PROBE_PORT])[PROBE_PORT] == "filtered"
    finally:
        host.run("systemctl stop %s", unit)
