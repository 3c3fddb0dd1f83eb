"""Wait for sshd on new servers and record their host keys for strict checking."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from postyard.hetzner.client import ProvisionError

__all__ = ["wait_for_ssh"]


def _reachable(address: str, port: int = 22) -> bool:
    try:
        with socket.create_connection((address, port), timeout=5):
            return True
    except OSError:
        return False


def wait_for_ssh(addresses: Iterable[str], known_hosts: Path, timeout: float, log: Callable[[str], None]) -> None:
    """Wait until sshd answers on every address, then add keys not yet in known_hosts (first contact)."""
    known_hosts.touch(mode=0o600, exist_ok=True)
    for address in addresses:
        deadline = time.monotonic() + timeout
        while not _reachable(address):
            if time.monotonic() > deadline:
                raise ProvisionError(f"sshd on {address} did not answer within {timeout:.0f} s")
            time.sleep(3)
        if address in known_hosts.read_text():
            continue
        scan = subprocess.run(["ssh-keyscan", "-T", "10", "-t", "ed25519", address],
                              capture_output=True, text=True, check=False)
        if not scan.stdout.strip():
            raise ProvisionError(f"could not read the SSH host key of {address}")
        with known_hosts.open("a") as handle:
            handle.write(scan.stdout)
        log(f"sshd answers on {address}; host key recorded")
