"""System users and group memberships declared in a sysusers.d file (sysusers.d(5)), applied by
systemd-sysusers when the file changes; systemd applies it again at each boot.

A no-op deploy reads one file's checksum, where pyinfra's user operation lists every user and group."""

from __future__ import annotations

from collections.abc import Sequence
from io import StringIO

from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files, server

__all__ = ["SYSUSERS_DIR", "declare_users"]

SYSUSERS_DIR = "/etc/sysusers.d"


def declare_users(name: str, lines: Sequence[str]) -> OperationMeta:
    """Write /etc/sysusers.d/<name>.conf, and apply it when it changed."""
    path = f"{SYSUSERS_DIR}/{name}.conf"
    config = files.put(name=f"Upload {path}", src=StringIO("".join(f"{line}\n" for line in lines)), dest=path,
                       mode="644")
    server.shell(name=f"Apply {path}", commands=[f"systemd-sysusers {path}"], _if=config.did_change)
    return config
