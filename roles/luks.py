"""LUKS role: the db host's Hetzner volume encrypted with LUKS2, opened at boot, mounted for PostgreSQL."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server

from postyard.hetzner.secrets import random_key

__all__ = ["DEFAULTS", "deploy_luks", "prepare_script", "format_script", "open_script", "crypttab_line", "fstab_line", "local_key_path"]

DEFAULTS: dict[str, Any] = {
    # Block device of the data volume (inventory/hetzner.py sets it on db hosts); unset: the role does nothing.
    "data_volume": None,
    # Name of the opened mapping (/dev/mapper/<name>) and where it is mounted.
    "luks_name": "pgdata",
    "luks_mount": "/var/lib/postgresql",
    # Key file on the host's root filesystem (mode 0400), read by systemd-cryptsetup at boot.
    "luks_key_file": "/etc/postyard/luks/pgdata.key",
    # Directory on the control machine holding one key per host (mode 0600 files, outside git).
    "luks_secrets_dir": None,
}


def local_key_path(secrets_dir: str | Path, hostname: str) -> Path:
    """The control machine's copy of a host's volume key, made on first use."""
    return random_key(Path(secrets_dir) / "luks" / f"{hostname}.key")


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


@deploy("LUKS data volume", data_defaults=DEFAULTS)
def deploy_luks() -> None:
    device = host.data.data_volume
    if not device:
        return
    if not host.data.luks_secrets_dir:
        raise ValueError("set luks_secrets_dir (a directory outside the repository) for the volume keys")
    name, key_file, mount = host.data.luks_name, host.data.luks_key_file, host.data.luks_mount
    apt.packages(name="Install cryptsetup", packages=["cryptsetup"], no_recommends=True)
    files.directory(name=f"Create {Path(key_file).parent}", path=str(Path(key_file).parent), mode="700")
    files.put(name=f"Upload {key_file}", src=str(local_key_path(host.data.luks_secrets_dir, host.name)),
              dest=key_file, mode="400")
    server.shell(name=f"Encrypt {device} (LUKS2, once) and open it", commands=[prepare_script(device, key_file, name)])
    files.line(name="Open the volume at boot", path="/etc/crypttab",
               line=f"^{name} ", replace=crypttab_line(name, device, key_file))
    files.directory(name=f"Create {mount}", path=mount, mode="755")
    files.line(name=f"Mount {mount} at boot", path="/etc/fstab",
               line=f"^/dev/mapper/{name} ", replace=fstab_line(name, mount))
    server.mount(name=f"Mount {mount}", path=mount, device=f"/dev/mapper/{name}", fs_type="ext4")
