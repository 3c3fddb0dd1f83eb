"""pyinfra inventory groups from the deployment's labelled servers (read through the API)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from hcloud import Client

from postyard.hetzner import labels as L
from postyard.hetzner.client import api_errors, make_client
from postyard.hetzner.provision import ipv6_host_address
from postyard.hetzner.secrets import secrets_directory
from postyard.hetzner.settings import HetznerSettings, load_settings
from postyard.topology import GROUPS

__all__ = ["host_entries", "hetzner_groups"]

HostEntry = tuple[str, dict[str, Any]]


def host_entries(client: Client, settings: HetznerSettings,
                 bastion: str | None = None) -> list[tuple[tuple[str, ...], HostEntry]]:
    """(groups, (host name, host data)) for every labelled server, sorted by name."""
    secrets = settings.secrets
    base = L.base_labels(settings.project, settings.environment)
    with api_errors("list the deployment's servers"):
        servers = client.servers.get_all(label_selector=L.selector({**base, L.ROLE: "server"}))
        volumes = client.volumes.get_all(label_selector=L.selector({**base, L.ROLE: "volume"}))
        balancers = client.load_balancers.get_all(label_selector=L.selector({**base, L.ROLE: "load-balancer"}))
    # The api hosts' proxies take connections from these alone, and the API's name is on their certificates.
    balancer_addresses = sorted(net.ip for balancer in balancers for net in balancer.private_net or [])
    devices = {volume.labels.get(L.HOST): volume.linux_device for volume in volumes}
    ssh_config = None
    if bastion:
        ssh_config = secrets_directory(secrets) / "ssh_config"
        ssh_config.write_text(f"Host *\n    ProxyJump {bastion}\n")
    entries = []
    for server in sorted(servers, key=lambda s: s.name):
        public = server.public_net.ipv4.ip if server.public_net.ipv4 else None
        private = next((net.ip for net in server.private_net or []), None)
        data: dict[str, Any] = {
            "ssh_hostname": private if bastion else public,
            "ssh_user": "root",
            "ssh_key": str(secrets / "id_ed25519"),
            "ssh_known_hosts_file": str(secrets / "known_hosts"),
            "ssh_strict_host_key_checking": "yes",
            "hostname": server.name,
            "public_address": public,
            "public_address6": ipv6_host_address(server.public_net.ipv6.ip) if server.public_net.ipv6 else None,
            "private_address": private,
            "secrets_dir": str(secrets),
            "environment": f"hetzner-{settings.project}-{settings.environment}",
        }
        if balancer_addresses:
            data["load_balancer_private_addresses"] = balancer_addresses
            if "api" in L.groups_from_labels(server.labels, GROUPS):
                data["tls_names"] = [server.name, settings.api_host_name]
        if ssh_config:
            data["ssh_config_file"] = str(ssh_config)
        if device := devices.get(server.labels.get(L.HOST)):
            data["data_volume"] = device
        entries.append((L.groups_from_labels(server.labels, GROUPS), (server.name, data)))
    return entries


def hetzner_groups(env: Mapping[str, str] | None = None) -> dict[str, list[HostEntry]]:
    """{group: [(host name, host data)]} for the deployment that the environment names."""
    env = os.environ if env is None else env
    settings = load_settings(env=env)
    bastion = env.get("POSTYARD_BASTION") or None
    groups: dict[str, list[HostEntry]] = {group: [] for group in GROUPS}
    for names, entry in host_entries(make_client(env), settings, bastion):
        for group in names:
            groups[group].append(entry)
    return groups
