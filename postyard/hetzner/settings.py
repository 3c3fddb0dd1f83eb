"""Settings of a Hetzner deployment: group data (group_data/hetzner.py) plus the environment."""

from __future__ import annotations

import os
import runpy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from postyard.deployer import REPO
from postyard.topology import API_NAME_LABEL, GROUPS, LB_GROUP, TOPOLOGIES, HostPlan

__all__ = ["HetznerSettings", "PlannedHost", "load_settings", "plan_hosts", "default_secrets_dir"]


def default_secrets_dir(project: str, environment: str) -> Path:
    """Per-deployment secrets, outside any repository: ~/.config/postyard/hetzner-<project>-<environment>."""
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "postyard" / f"hetzner-{project}-{environment}"


@dataclass(frozen=True)
class HetznerSettings:
    """Everything provisioning reads; group_data/hetzner.py documents each setting."""

    domain: str
    project: str = "postyard"
    environment: str = "production"
    topology: str = "single"
    mail_hostname: str = ""  # default: mail.<domain>
    api_hostname: str = ""  # default: api.<domain>
    sending_domains: tuple[str, ...] = ()  # default: (domain,)
    location: str = "nbg1"
    locations: Mapping[str, str] = field(default_factory=dict)  # per group
    server_types: Mapping[str, str] = field(default_factory=lambda: {"single": "cx33", "default": "cx23"})
    image: str = "debian-12"
    network_ip_range: str = "10.0.0.0/16"
    subnet_ip_range: str = "10.0.1.0/24"
    network_zone: str = "eu-central"
    volume_size: int = 10
    load_balancer_type: str = "lb11"
    ssh_admin_allowlist: tuple[str, ...] = ()
    flags: Mapping[str, bool] = field(default_factory=dict)
    dkim_selector: str = "postyard"
    dmarc_policy: str = "quarantine"
    mta_sts_mode: str = "testing"
    secrets_dir: Path | None = None
    action_timeout: float = 600.0
    poll_interval: float = 1.0

    @property
    def mail_host_name(self) -> str:
        return self.mail_hostname or f"mail.{self.domain}"

    @property
    def api_host_name(self) -> str:
        return self.api_hostname or f"{API_NAME_LABEL}.{self.domain}"

    @property
    def sending_domain(self) -> str:
        return (self.sending_domains or (self.domain,))[0]

    @property
    def secrets(self) -> Path:
        return self.secrets_dir or default_secrets_dir(self.project, self.environment)


@dataclass(frozen=True)
class PlannedHost:
    """One server to exist: short name, fqdn, groups, type and location."""

    name: str
    fqdn: str
    groups: tuple[str, ...]
    server_type: str
    location: str


def plan_hosts(settings: HetznerSettings) -> tuple[PlannedHost, ...]:
    """The servers of the topology; the first mail host is named after the mail host name."""
    plans: tuple[HostPlan, ...] = TOPOLOGIES[settings.topology]
    hosts, mail_named = [], False
    types, locations = settings.server_types, settings.locations
    for plan in plans:
        if LB_GROUP in plan.groups:
            continue  # Hetzner's own load balancer stands where the testbed runs a host
        if "mail" in plan.groups and not mail_named:
            fqdn, mail_named = settings.mail_host_name, True
        else:
            fqdn = f"{plan.name}.{settings.domain}"
        every_group = set(plan.groups) == set(GROUPS)
        first = plan.groups[0]
        server_type = types.get("single") if every_group and "single" in types else None
        server_type = server_type or types.get(first) or types["default"]
        hosts.append(PlannedHost(plan.name, fqdn, plan.groups, server_type,
                                 locations.get(first, settings.location)))
    return tuple(hosts)


SETTING_KEYS = {
    "domain": "domain", "mail_hostname": "mail_hostname", "api_hostname": "api_hostname",
    "sending_domains": "sending_domains", "hcloud_location": "location", "hcloud_locations": "locations",
    "hcloud_server_types": "server_types", "hcloud_image": "image",
    "hcloud_network_ip_range": "network_ip_range", "hcloud_subnet_ip_range": "subnet_ip_range",
    "hcloud_network_zone": "network_zone", "hcloud_volume_size": "volume_size",
    "hcloud_load_balancer_type": "load_balancer_type", "ssh_admin_allowlist": "ssh_admin_allowlist",
    "dkim_selector": "dkim_selector", "dmarc_policy": "dmarc_policy", "mta_sts_mode": "mta_sts_mode",
    "hcloud_action_timeout": "action_timeout",
}
TUPLES = ("sending_domains", "ssh_admin_allowlist")


def _group_data(repo: Path) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in ("all.py", "hetzner.py"):
        path = repo / "group_data" / name
        if path.exists():
            data.update({k: v for k, v in runpy.run_path(str(path)).items() if not k.startswith("_")})
    return data


def load_settings(topology: str = "single", repo: Path = REPO, env: Mapping[str, str] | None = None) -> HetznerSettings:
    """Settings from group_data/all.py and group_data/hetzner.py; POSTYARD_* variables override."""
    env = os.environ if env is None else env
    data = _group_data(repo)
    values: dict[str, Any] = {}
    for key, attribute in SETTING_KEYS.items():
        if key in data:
            value = data[key]
            values[attribute] = tuple(value) if attribute in TUPLES else value
    values["flags"] = {flag: bool(data.get(flag, False)) for flag in ("acme_http01", "mailboxes_enabled")}
    values["project"] = env.get("POSTYARD_PROJECT", data.get("project", "postyard"))
    values["environment"] = env.get("POSTYARD_ENVIRONMENT", data.get("environment", "production"))
    if "POSTYARD_DOMAIN" in env:
        values["domain"] = env["POSTYARD_DOMAIN"]
    if "POSTYARD_SECRETS_DIR" in env:
        values["secrets_dir"] = Path(env["POSTYARD_SECRETS_DIR"])
    if "domain" not in values:
        raise ValueError("set `domain` in group_data/hetzner.py (or POSTYARD_DOMAIN)")
    return HetznerSettings(topology=topology, **values)
