"""Run a command on a host over OpenSSH: the one runner the CLI, the tests and the benchmarks use."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["SshError", "SshTarget", "ssh_argv", "ssh_run"]


@dataclass(frozen=True)
class SshTarget:
    """Where a command goes: the host's address and login, with the key and known_hosts to use."""

    name: str  # how errors name the host
    address: str
    user: str = "root"
    key: str | None = None
    known_hosts: str | None = None  # given: strict host key checking against it

    def options(self) -> list[str]:
        """OpenSSH client options: the key, and strict checking against known_hosts."""
        options = []
        if self.known_hosts:
            options += ["-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes"]
        if self.key:
            options += ["-i", self.key]
        return options


class HasSshTarget(Protocol):
    def ssh_target(self) -> SshTarget: ...


class SshError(RuntimeError):
    """A command on a host failed, or did not finish in time (then `status` is None)."""

    def __init__(self, host: str, command: str, status: int | None, stderr: str) -> None:
        self.host, self.command, self.status, self.stderr = host, command, status, stderr
        outcome = "timed out" if status is None else f"exited {status}"
        super().__init__(f"{host}: `{_shorten(command)}` {outcome}: {stderr.strip()[-2000:]}")


def _shorten(command: str, limit: int = 120) -> str:
    line = " ".join(command.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def ssh_argv(target: SshTarget, command: str, *options: str) -> list[str]:
    """The `ssh` command line that runs `command` (a shell line) on the target, never prompting."""
    extra = [arg for option in options for arg in ("-o", option)]
    return ["ssh", "-o", "BatchMode=yes", *extra, *target.options(), f"{target.user}@{target.address}", command]


def ssh_run(host: SshTarget | HasSshTarget, command: str | Sequence[str], *, input: str | bytes | None = None,
            timeout: float = 600) -> str:
    """Run `command` on the host and return its stdout; raise SshError if it fails or times out.

    A list is one program and its arguments (quoted here); a string is a shell line, sent as is.
    """
    target = host if isinstance(host, SshTarget) else host.ssh_target()
    line = command if isinstance(command, str) else shlex.join(command)
    stdin = input.encode() if isinstance(input, str) else input
    try:
        completed = subprocess.run(ssh_argv(target, line), input=stdin, capture_output=True, timeout=timeout,
                                   check=False)
    except subprocess.TimeoutExpired as expired:
        stderr = (expired.stderr or b"").decode(errors="replace")
        raise SshError(target.name, line, None, f"{stderr} (after {timeout:.0f} s)") from None
    if completed.returncode != 0:
        raise SshError(target.name, line, completed.returncode, completed.stderr.decode(errors="replace"))
    return completed.stdout.decode(errors="replace")
