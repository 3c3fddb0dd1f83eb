"""pyinfra inventory groups for a running testbed, built from its state file."""

from __future__ import annotations

from typing import Any

from postyard.testbed import state as testbed_state
from postyard.topology import GROUPS

__all__ = ["testbed_groups"]

HostEntry = tuple[str, dict[str, Any]]


def testbed_groups(name: str) -> dict[str, list[HostEntry]]:
    """{group: [(host name, host data)]} for every platform group (empty when not up)."""
    bed = testbed_state.load(name)
    groups: dict[str, list[HostEntry]] = {group: [] for group in GROUPS}
    if bed is None:
        return groups
    for record in bed.hosts:
        data = {
            "ssh_hostname": record.public_address,
            "ssh_user": "root",
            "ssh_key": str(bed.ssh_key),
            "ssh_known_hosts_file": str(bed.known_hosts),
            "ssh_strict_host_key_checking": "yes",
            "hostname": record.fqdn,
            "public_address": record.public_address,
            "private_address": record.private_address,
            "secrets_dir": str(bed.directory / "secrets"),
        }
        for group in record.groups:
            groups[group].append((record.fqdn, data))
    return groups
