"""LUKS role: the db host's Hetzner volume encrypted with LUKS2, opened at boot, mounted for PostgreSQL."""

from __future__ import annotations

import os
import shlex
from io import BytesIO
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, server

from roles.support.inventory_secrets import secret_store

__all__ = [
    "DEFAULTS", "deploy_luks", "prepare_script", "format_script", "open_script", "crypttab_line", "fstab_line",
    "volume_key",
]

DEFAULTS: dict[str, Any] = {
    # Block device of the data volume (inventory/hetzner.py sets it on db hosts); unset: the role does nothing.
    "data_volume": None,
    # Name of the opened mapping (/dev/mapper/<name>) and where it is mounted.
    "luks_name": "pgdata",
    "luks_mount": "/var/lib/postgresql",
    # Key file on the host's root filesystem (mode 0400), read by systemd-cryptsetup at boot.
    "luks_key_file": "/etc/postyard/luks/pgdata.key",
}


def volume_key() -> bytes:
    """This host's volume key: 64 random bytes, made once, kept in the inventory's secret store."""
    return secret_store().get_bytes(f"luks-{host.name}.key", lambda: os.urandom(64))


def format_script(device: str, key_file: str) -> str:
    """Format the device with LUKS2 only if it holds no LUKS header yet (never reformats)."""
    d, k = shlex.quote(device), shlex.quote(key_file)
    return f"cryptsetup isLuks {d} || cryptsetup luksFormat --batch-mode --type luks2 --key-file {k} {d}"


def open_script(device: str, key_file: str, name: str) -> str:
    """Open the volume unless open, and make its ext4 file system once."""
    d, k, n = shlex.quote(device), shlex.quote(key_file), shlex.quote(name)
    return (f"{{ [ -e /dev/mapper/{n} ] || cryptsetup open --key-file {k} {d} {n}; }} && "
            f"{{ blkid -o value -s TYPE /dev/mapper/{n} >/dev/null || mkfs.ext4 -q -L {n} /dev/mapper/{n}; }}")


def prepare_script(device: str, key_file: str, name: str) -> str:
    """Format once, open, make the file system once."""
    return f"set -eu\n{format_script(device, key_file)}\n{open_script(device, key_file, name)}"


def crypttab_line(name: str, device: str, key_file: str) -> str:
    return f"{name} {device} {key_file} luks,discard"


def fstab_line(name: str, mount: str) -> str:
    return f"/dev/mapper/{name} {mount} ext4 defaults,nofail,x-systemd.requires=systemd-cryptsetup@{name}.service 0 2"


def _is_prepared(device: str, name: str) -> bool:
    """Formatted and open already: then the prepare step has nothing to do (and reports nothing)."""
    check = (f"cryptsetup isLuks {shlex.quote(device)} 2>/dev/null && [ -e /dev/mapper/{shlex.quote(name)} ] "
             "&& echo yes || echo no")
    return host.get_fact(Command, command=check).strip() == "yes"


@deploy("LUKS data volume", data_defaults=DEFAULTS)
def deploy_luks() -> None:
    device = host.data.data_volume
    if not device:
        return
    name, key_file, mount = host.data.luks_name, host.data.luks_key_file, host.data.luks_mount
    apt.packages(name="Install cryptsetup", packages=["cryptsetup"], no_recommends=True)
    files.directory(name=f"Create {Path(key_file).parent}", path=str(Path(key_file).parent), mode="700")
    files.put(name=f"Upload {key_file}", src=BytesIO(volume_key()), dest=key_file, mode="400")
    if not _is_prepared(device, name):
        server.shell(name=f"Encrypt {device} (LUKS2, once) and open it",
                     commands=[prepare_script(device, key_file, name)])
    files.line(name="Open the volume at boot", path="/etc/crypttab",
               line=f"^{name} ", replace=crypttab_line(name, device, key_file))
    files.directory(name=f"Create {mount}", path=mount, mode="755")
    files.line(name=f"Mount {mount} at boot", path="/etc/fstab",
               line=f"^/dev/mapper/{name} ", replace=fstab_line(name, mount))
    server.mount(name=f"Mount {mount}", path=mount, device=f"/dev/mapper/{name}", fs_type="ext4")
