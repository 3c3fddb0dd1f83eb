"""Hosts of a pyinfra inventory as the verification suite sees them (same data as the deploy)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from postyard.deployer import REPO
from postyard.exposure import Exposure, exposures_for_host
from postyard.secrets import SecretStore
from postyard.ssh import SshTarget
from postyard.topology import LB_GROUP, host_groups, is_balanced, is_clustered, roles_for_groups
from roles.firewall import DEFAULTS as FIREWALL_DEFAULTS

__all__ = ["InfraHost", "load_hosts"]

FLAGS = ("acme_http01", "mailboxes_enabled")


@dataclass(frozen=True)
class InfraHost:
    """One deployed host: where it is, what it runs, which rows of the exposure table it owns."""

    name: str
    fqdn: str
    address: str
    groups: tuple[str, ...]
    roles: tuple[str, ...]
    flags: dict[str, Any]
    tls_names: tuple[str, ...]  # names on its public certificate (hosts with the tls role)
    private_address: str | None
    environment: str | None
    secrets_dir: str | None
    outside_netns: str | None  # where to probe from as the internet would; None: this machine
    ssh_user: str
    ssh_key: str | None
    known_hosts: str | None

    @property
    def exposures(self) -> tuple[Exposure, ...]:
        return exposures_for_host(self.groups, self.roles, self.flags)

    def secrets(self) -> SecretStore:
        if not self.secrets_dir:
            raise ValueError(f"{self.name}: the inventory sets no secrets_dir")
        return SecretStore(Path(self.secrets_dir))

    @property
    def public_ports(self) -> set[int]:
        return {row.port for row in self.exposures if row.public and row.protocol == "tcp"}

    @property
    def listening_ports(self) -> set[int]:
        """Public ports that always answer; the others open only on demand (ACME challenges)."""
        return {
            row.port for row in self.exposures if row.public and row.protocol == "tcp" and not row.on_demand
        }

    def outside_state(self, port: int) -> str:
        """What a TCP scan from the internet sees of a port while nothing runs on demand."""
        if port in self.listening_ports:
            return "open"
        return "closed" if port in self.public_ports else "filtered"

    def ssh_target(self) -> SshTarget:
        """How postyard.ssh reaches it: the inventory's key, strict checking against its known_hosts."""
        return SshTarget(self.name, self.address, self.ssh_user, self.ssh_key, self.known_hosts)

    def ssh_command(self) -> str:
        return " ".join(["ssh", *self.ssh_target().options(), f"{self.ssh_user}@{self.address}"])

    def testinfra_spec(self) -> tuple[str, dict[str, Any]]:
        """Arguments for testinfra.get_host: OpenSSH, strict host key checking when known."""
        options = ["-o", "BatchMode=yes", *self.ssh_target().options()]
        return f"ssh://{self.ssh_user}@{self.address}", {"ssh_extra_args": " ".join(options)}


def _value(data: Any, key: str, default: Any = None) -> Any:
    value = data.get(key)
    return default if value is None else value


def _read_inventory(inventory_path: str) -> list[dict[str, Any]]:
    """Run in a child process: pyinfra's CLI patches the whole process with gevent on import."""
    from pyinfra.api.state import State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory

    with ctx_state.use(State()):  # pyinfra reads inventory files inside a state context
        inventory = make_inventory(inventory_path, cwd=str(REPO))
    db_hosts = Counter(host.data.get("environment") for host in inventory if "db" in host_groups(host.groups))
    lb_hosts = Counter(host.data.get("environment") for host in inventory if LB_GROUP in host_groups(host.groups))
    hosts = []
    for host in inventory:
        groups = host_groups(host.groups)
        data = host.data
        clustered = is_clustered(db_hosts[data.get("environment")])
        balanced = is_balanced(lb_hosts[data.get("environment")], data.get("load_balancer_private_addresses"))
        hosts.append({
            "name": host.name,
            "fqdn": _value(data, "hostname", host.name),
            "address": _value(data, "ssh_hostname", host.name),
            "groups": list(groups),
            "roles": list(roles_for_groups(groups, clustered, balanced)),
            "flags": {flag: _value(data, flag, FIREWALL_DEFAULTS[flag]) for flag in FLAGS},
            "tls_names": list(_value(data, "tls_names", [_value(data, "hostname", host.name)])),
            "private_address": data.get("private_address"),
            "environment": data.get("environment"),
            "secrets_dir": data.get("secrets_dir"),
            "outside_netns": data.get("outside_netns"),
            "ssh_user": _value(data, "ssh_user", "root"),
            "ssh_key": data.get("ssh_key"),
            "known_hosts": data.get("ssh_known_hosts_file"),
        })
    return hosts


def load_hosts(inventory_path: Path) -> list[InfraHost]:
    """Every host of the inventory, with the group data pyinfra would give it."""
    completed = subprocess.run(
        [sys.executable, "-m", "postyard.inventory_hosts", str(inventory_path)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    if completed.returncode != 0:
        raise ValueError(f"cannot read {inventory_path}: {completed.stderr.strip()[-2000:]}")
    return [
        InfraHost(**{**raw, "groups": tuple(raw["groups"]), "roles": tuple(raw["roles"]),
                     "tls_names": tuple(raw["tls_names"])})
        for raw in json.loads(completed.stdout)
    ]


if __name__ == "__main__":
    print(json.dumps(_read_inventory(sys.argv[1])))
