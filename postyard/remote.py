"""Run a command on an inventory host over OpenSSH, with the inventory's key and known_hosts."""

from __future__ import annotations

import shlex
import subprocess

from postyard.inventory_hosts import InfraHost

__all__ = ["RemoteError", "ssh_run"]


class RemoteError(RuntimeError):
    """A command on a host failed; the message has its stderr."""


def ssh_run(host: InfraHost, argv: list[str], stdin: bytes | None = None, timeout: float = 600) -> str:
    command = " ".join(shlex.quote(arg) for arg in argv)
    completed = subprocess.run(
        ["ssh", "-o", "BatchMode=yes", *host.ssh_options(), f"{host.ssh_user}@{host.address}", command],
        input=stdin, capture_output=True, timeout=timeout, check=False,
    )
    if completed.returncode != 0:
        raise RemoteError(f"{host.name}: {argv[0]} failed: {completed.stderr.decode(errors='replace').strip()}")
    return completed.stdout.decode()
