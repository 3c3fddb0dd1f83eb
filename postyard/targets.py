"""Where the platform is deployed: the local testbed now, Hetzner Cloud later, one interface."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from postyard.deployer import REPO
from postyard.testbed import bed
from postyard.testbed.state import testbed_dir

__all__ = ["Target", "TestbedTarget", "HetznerTarget", "make_target", "TargetError"]

Log = Callable[[str], None]


class TargetError(RuntimeError):
    """The target cannot be used as asked; the message says why and what to do."""


class Target(Protocol):
    """Hosts to deploy to: create them, name their inventory, remove them."""

    name: str

    def provision(self, topology: str, log: Log) -> None: ...
    def inventory(self) -> Path: ...
    def environment(self) -> dict[str, str]: ...
    def log_dir(self) -> Path: ...
    def teardown(self, log: Log) -> None: ...


@dataclass
class TestbedTarget:
    """Debian 12 hosts booted with systemd-nspawn on this machine."""

    testbed: str = "main"
    name: str = field(default="testbed", init=False)

    def provision(self, topology: str, log: Log) -> None:
        bed.up(self.testbed, topology, log=log)

    def inventory(self) -> Path:
        return REPO / "inventory" / "testbed.py"

    def environment(self) -> dict[str, str]:
        return {"POSTYARD_TESTBED": self.testbed}

    def log_dir(self) -> Path:
        return testbed_dir(self.testbed)

    def teardown(self, log: Log) -> None:
        bed.down(self.testbed, log=log)


@dataclass
class HetznerTarget:
    """Hetzner Cloud servers, provisioned by label with hcloud (HCLOUD_TOKEN from the environment)."""

    name: str = field(default="hetzner", init=False)

    def _unavailable(self) -> TargetError:
        return TargetError(
            "the Hetzner target needs the provisioning module, which is not part of this release; "
            "use --target testbed"
        )

    def provision(self, topology: str, log: Log) -> None:
        raise self._unavailable()

    def inventory(self) -> Path:
        return REPO / "inventory" / "hetzner.py"

    def environment(self) -> dict[str, str]:
        return {}

    def log_dir(self) -> Path:
        return Path.home() / ".local/state/postyard/hetzner"

    def teardown(self, log: Log) -> None:
        raise self._unavailable()


def make_target(kind: str, testbed: str = "main") -> Target:
    if kind == "testbed":
        return TestbedTarget(testbed)
    if kind == "hetzner":
        return HetznerTarget()
    raise TargetError(f"unknown target {kind!r}: choose testbed or hetzner")
