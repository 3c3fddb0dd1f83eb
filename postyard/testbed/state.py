"""What a testbed consists of, written to disk as it is built so teardown always knows."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from postyard.topology import API_NAME_LABEL, LB_GROUP

__all__ = ["HostRecord", "TestbedState", "STATE_ROOT", "CACHE_ROOT", "testbed_dir", "load", "save"]

STATE_ROOT = Path(os.environ.get("POSTYARD_TESTBED_ROOT", "/var/lib/postyard/testbed"))
CACHE_ROOT = Path(os.environ.get("POSTYARD_CACHE", "/var/cache/postyard"))
# The API's name behind the load balancer, under the testbed's domain (Hetzner's default is the same label).
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,5}$")


@dataclass
class HostRecord:
    """One booted host."""

    name: str
    fqdn: str
    groups: list[str]
    public_address: str
    private_address: str
    netns: str
    machine: str
    rootfs: str
    nspawn_pid: int | None = None
    kind: str = "platform"  # or "internet": the testbed's own DNS, not a platform host


@dataclass
class TestbedState:
    """Everything one testbed created on this machine."""

    name: str
    index: int
    topology: str
    public_subnet: str
    private_subnet: str
    gateway: str
    outside_address: str
    domain: str
    hosts: list[HostRecord] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        """Every link, namespace and machine of this testbed starts with this."""
        return f"pyd{self.name}"

    @property
    def public_bridge(self) -> str:
        return f"{self.prefix}-pub"

    @property
    def private_bridge(self) -> str:
        return f"{self.prefix}-prv"

    @property
    def outside_netns(self) -> str:
        return f"{self.prefix}-outside"

    @property
    def nft_table(self) -> str:
        return f"postyard_testbed_{self.name}"

    @property
    def platform_hosts(self) -> list[HostRecord]:
        return [h for h in self.hosts if h.kind == "platform"]

    @property
    def load_balancer(self) -> HostRecord | None:
        """The host standing in for Hetzner's load balancer, in topologies with several api hosts."""
        return next((h for h in self.platform_hosts if LB_GROUP in h.groups), None)

    @property
    def api_name(self) -> str | None:
        """The name clients reach the API by through the load balancer; None without one."""
        return f"{API_NAME_LABEL}.{self.domain}" if self.load_balancer else None

    @property
    def internet_host(self) -> HostRecord | None:
        return next((h for h in self.hosts if h.kind == "internet"), None)

    @property
    def directory(self) -> Path:
        return testbed_dir(self.name)

    @property
    def ssh_key(self) -> Path:
        return self.directory / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.directory / "known_hosts"


def testbed_dir(name: str) -> Path:
    if not NAME_PATTERN.match(name):
        raise ValueError(f"testbed name {name!r}: use 1-6 lowercase letters or digits")
    return STATE_ROOT / name


def state_file(name: str) -> Path:
    return testbed_dir(name) / "state.json"


def save(state: TestbedState) -> None:
    path = state_file(state.name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(asdict(state), indent=2))
    os.replace(partial, path)


def load(name: str) -> TestbedState | None:
    path = state_file(name)
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    hosts = [HostRecord(**host) for host in raw.pop("hosts")]
    return TestbedState(**raw, hosts=hosts)


def existing_names() -> list[str]:
    if not STATE_ROOT.exists():
        return []
    return sorted(p.parent.name for p in STATE_ROOT.glob("*/state.json"))
