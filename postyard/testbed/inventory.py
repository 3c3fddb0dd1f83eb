"""pyinfra inventory groups for a running testbed, built from its state file."""

from __future__ import annotations

from typing import Any

from postyard.testbed import internet
from postyard.testbed import state as testbed_state
from postyard.topology import INVENTORY_GROUPS

__all__ = ["testbed_groups", "testbed_name"]

ENVIRONMENT_PREFIX = "testbed-"

HostEntry = tuple[str, dict[str, Any]]


def testbed_groups(names: str) -> dict[str, list[HostEntry]]:
    """{group: [(host name, host data)]} for the testbeds named (comma-separated), each its own
    environment; groups are empty for a testbed that is not up."""
    groups: dict[str, list[HostEntry]] = {group: [] for group in INVENTORY_GROUPS}
    for name in filter(None, (n.strip() for n in names.split(","))):
        bed = testbed_state.load(name)
        if bed is not None:
            _add_hosts(groups, bed)
    return groups


def testbed_name(environment: str | None) -> str | None:
    """The testbed an inventory host belongs to, from its environment; None for real hosts."""
    if environment and environment.startswith(ENVIRONMENT_PREFIX):
        return environment[len(ENVIRONMENT_PREFIX):]
    return None


def _add_hosts(groups: dict[str, list[HostEntry]], bed: testbed_state.TestbedState) -> None:
    for record in bed.platform_hosts:
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
            "environment": f"{ENVIRONMENT_PREFIX}{bed.name}",
            "outside_netns": bed.outside_netns,
            # certificates from the testbed's pebble, whose HTTPS the internal CA signed
            "acme_http01": True,
            "acme_directory": internet.ACME_DIRECTORY,
            "acme_trust_internal_ca": True,
            # Bans from the tests' failed logins must lift while the suite still runs.
            "fail2ban_bantime": "30s",
            # Low enough for a test to reach in one session.
            "postfix_user_message_rate": 20,
            # Webhook receivers in tests listen on the outside host's own address, and only there.
            "app_extra_settings": {"POSTYARD_WEBHOOK_ALLOWED_NETWORKS": f"{bed.outside_address}/32"},
        }
        if bed.api_name and "api" in record.groups:
            # clients reach every api host by the one name, at the load balancer
            data["tls_names"] = [record.fqdn, bed.api_name]
        for group in record.groups:
            if any(name == record.fqdn and other is not data for name, other in groups[group]):
                raise ValueError(f"{record.fqdn} is in two of the testbeds named; use different topologies")
            groups[group].append((record.fqdn, data))
