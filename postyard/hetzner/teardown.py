"""Find and delete a deployment's labelled Hetzner resources, and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hcloud import Client
from hcloud.firewalls import FirewallResource, FirewallResourceLabelSelector

from postyard.hetzner import labels as L
from postyard.hetzner.client import ProvisionError, api_errors, delete_load_balancer, wait_for
from postyard.hetzner.settings import HetznerSettings

__all__ = ["Inventory", "find_resources", "teardown"]

Log = Callable[[str], None]

# The kinds of resource found by the deployment's labels alone, in the order they are listed (zones and their
# records are found by name as well, and listed apart).
LABELLED_KINDS = ("load_balancers", "servers", "placement_groups", "volumes", "primary_ips", "firewalls", "networks",
                  "ssh_keys")


@dataclass
class Inventory:
    """The deployment's resources, each found by its labels."""

    load_balancers: list[Any] = field(default_factory=list)
    servers: list[Any] = field(default_factory=list)
    placement_groups: list[Any] = field(default_factory=list)
    volumes: list[Any] = field(default_factory=list)
    primary_ips: list[Any] = field(default_factory=list)
    firewalls: list[Any] = field(default_factory=list)
    networks: list[Any] = field(default_factory=list)
    ssh_keys: list[Any] = field(default_factory=list)
    zones: list[Any] = field(default_factory=list)
    rrsets: list[Any] = field(default_factory=list)

    def describe(self) -> list[str]:
        lines = []
        for kind in (*LABELLED_KINDS, "zones"):
            lines += [f"{kind[:-1].replace('_', ' ')} {item.name}" for item in getattr(self, kind)]
        lines += [f"DNS {item.type} {item.name}" for item in self.rrsets]
        return lines

    def __len__(self) -> int:
        return len(self.describe())


def find_resources(client: Client, settings: HetznerSettings) -> Inventory:
    """Every resource that carries both labels of this project and environment."""
    query = L.selector(L.base_labels(settings.project, settings.environment))
    found = Inventory()
    with api_errors("list the deployment's resources"):
        for kind in LABELLED_KINDS:
            getattr(found, kind).extend(getattr(client, kind).get_all(label_selector=query))
        found.zones = client.zones.get_all(label_selector=query)
        for zone in client.zones.get_all(name=settings.domain):
            found.rrsets += client.zones.get_rrset_all(zone, label_selector=query)
    return found


def _ours(item: Any, settings: HetznerSettings) -> None:
    if not L.is_ours(item.labels, settings.project, settings.environment):
        raise ProvisionError(f"refusing to delete {item.name}: it lacks this deployment's labels")


def teardown(client: Client, settings: HetznerSettings, found: Inventory, log: Log = lambda _: None) -> int:
    """Delete what find_resources returned (checked again, one by one); return how many."""
    wait = lambda actions, what: wait_for(client, actions, what, settings.action_timeout, settings.poll_interval)  # noqa: E731
    deleted = 0
    for rrset in found.rrsets:
        _ours(rrset, settings)
        with api_errors(f"delete DNS {rrset.type} {rrset.name}"):
            wait([client.zones.delete_rrset(rrset).action], f"delete DNS {rrset.type} {rrset.name}")
        deleted += 1
    for balancer in found.load_balancers:
        _ours(balancer, settings)
        with api_errors(f"delete load balancer {balancer.name}"):
            action = delete_load_balancer(client, balancer.id)
        wait([action], f"delete load balancer {balancer.name}")
        deleted += 1
    for server in found.servers:
        _ours(server, settings)
        with api_errors(f"delete server {server.name}"):
            wait([client.servers.delete(server)], f"delete server {server.name}")
        deleted += 1
    for volume in found.volumes:
        _ours(volume, settings)
        with api_errors(f"delete volume {volume.name}"):
            current = client.volumes.get_by_id(volume.id)
            if current.server is not None:
                wait([current.detach()], f"detach volume {volume.name}")
            client.volumes.delete(volume)
        deleted += 1
    for ip in found.primary_ips:
        _ours(ip, settings)
        with api_errors(f"delete primary IP {ip.name}"):
            client.primary_ips.delete(ip)
        deleted += 1
    for firewall in found.firewalls:
        _ours(firewall, settings)
        with api_errors(f"delete firewall {firewall.name}"):
            current = client.firewalls.get_by_id(firewall.id)
            selectors = [FirewallResource(type="label_selector",
                                          label_selector=FirewallResourceLabelSelector(selector=a.label_selector.selector))
                         for a in current.applied_to or [] if a.type == "label_selector"]
            if selectors:
                wait(client.firewalls.remove_from_resources(current, selectors), f"detach firewall {firewall.name}")
            client.firewalls.delete(firewall)
        deleted += 1
    for kind in ("placement_groups", "networks", "ssh_keys"):
        for item in getattr(found, kind):
            _ours(item, settings)
            with api_errors(f"delete {kind[:-1]} {item.name}"):
                getattr(client, kind).delete(item)
            deleted += 1
    for zone in found.zones:
        _ours(zone, settings)
        with api_errors(f"delete DNS zone {zone.name}"):
            wait([client.zones.delete(zone).action], f"delete DNS zone {zone.name}")
        deleted += 1
    log(f"deleted {deleted} resources")
    return deleted
