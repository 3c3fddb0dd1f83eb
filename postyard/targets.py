"""Where the platform is deployed: the local testbed now, Hetzner Cloud later, one interface."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from postyard.deployer import REPO
from postyard.testbed import bed, internet
from postyard.testbed import state as testbed_state
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
    def trust_anchor(self) -> Path | None: ...
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

    def trust_anchor(self) -> Path | None:
        """The testbed's ACME root (pebble makes a new one each time it starts), written to a file."""
        state = testbed_state.load(self.testbed)
        if state is None:
            return None
        path = self.log_dir() / "acme-root.pem"
        path.write_text(internet.acme_root_pem(state))
        return path

    def teardown(self, log: Log) -> None:
        bed.down(self.testbed, log=log)


@dataclass
class HetznerTarget:
    """Hetzner Cloud servers, provisioned by label with hcloud (HCLOUD_TOKEN from the environment)."""

    project: str | None = None
    environment_name: str | None = None
    assume_yes: bool = False
    wait_for_ssh: bool = True
    ssh_timeout: float = 300.0
    name: str = field(default="hetzner", init=False)

    def environment(self) -> dict[str, str]:
        """Names the deployment for the inventory; the token stays in the caller's environment only."""
        found = {}
        if self.project:
            found["POSTYARD_PROJECT"] = self.project
        if self.environment_name:
            found["POSTYARD_ENVIRONMENT"] = self.environment_name
        return found

    def _settings(self, topology: str = "single"):
        from postyard.hetzner.settings import load_settings

        try:
            return load_settings(topology, env={**os.environ, **self.environment()})
        except ValueError as error:
            raise TargetError(str(error)) from None

    def _client(self, settings):
        from postyard.hetzner.client import ProvisionError, make_client

        try:
            return make_client(poll_interval=settings.poll_interval)
        except ProvisionError as error:
            raise TargetError(str(error)) from None

    def provision(self, topology: str, log: Log) -> None:
        from postyard.hetzner.client import ProvisionError
        from postyard.hetzner.provision import provision
        from postyard.hetzner.ssh import wait_for_ssh

        settings = self._settings(topology)
        try:
            result = provision(self._client(settings), settings, log)
            log(f"hetzner: {len(result.created)} created, {len(result.changed)} updated")
            if self.wait_for_ssh:
                wait_for_ssh([h.ipv4 for h in result.hosts], settings.secrets / "known_hosts",
                             self.ssh_timeout, log)
        except ProvisionError as error:
            raise TargetError(str(error)) from None

    def inventory(self) -> Path:
        return REPO / "inventory" / "hetzner.py"

    def log_dir(self) -> Path:
        return self._settings().secrets / "logs"

    def trust_anchor(self) -> Path | None:
        return None  # Let's Encrypt: clients trust it already

    def teardown(self, log: Log) -> None:
        from postyard.hetzner.client import ProvisionError
        from postyard.hetzner.teardown import find_resources, teardown

        settings = self._settings()
        client = self._client(settings)
        try:
            found = find_resources(client, settings)
            if not len(found):
                log(f"nothing labelled {settings.project}/{settings.environment} on Hetzner")
                return
            log(f"labelled {settings.project}/{settings.environment}: " + "; ".join(found.describe()))
            if not self.assume_yes:
                if not sys.stdin.isatty():
                    raise TargetError(f"refusing to delete {len(found)} resources without confirmation: pass --yes")
                answer = input(f"delete these {len(found)} resources? type 'yes': ")
                if answer.strip() != "yes":
                    raise TargetError("teardown cancelled; nothing was deleted")
            teardown(client, settings, found, log)
        except ProvisionError as error:
            raise TargetError(str(error)) from None


def make_target(kind: str, testbed: str = "main", project: str | None = None,
                environment: str | None = None, assume_yes: bool = False) -> Target:
    if kind == "testbed":
        return TestbedTarget(testbed)
    if kind == "hetzner":
        return HetznerTarget(project, environment, assume_yes)
    raise TargetError(f"unknown target {kind!r}: choose testbed or hetzner")
