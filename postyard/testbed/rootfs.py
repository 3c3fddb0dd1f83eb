"""Debian 12 root filesystems: built once with debootstrap, cached as a tarball, cloned per host."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
from pathlib import Path

from postyard.testbed.commands import run

__all__ = ["BASE_PACKAGES", "FLAVOURS", "cache_path", "ensure_cached_rootfs", "clone_rootfs", "host_public_key"]

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What a Hetzner Debian 12 image has that pyinfra and sshd need; everything else is the roles' job.
BASE_PACKAGES = ("systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "iproute2")
# The testbed's own internet services (postyard/testbed/internet.py) come preinstalled, and rsync, with which the
# internet host stands in for an off-site backup box.
FLAVOURS: dict[str, tuple[str, ...]] = {
    "minbase": BASE_PACKAGES,
    "internet": BASE_PACKAGES + ("bind9", "bind9-dnsutils", "postfix", "pebble", "ca-certificates",
                             "rsync"),
}


def cache_path(cache_dir: Path, flavour: str = "minbase") -> Path:
    """One tarball per flavour and package list: a changed list builds a new one."""
    if flavour == "minbase":
        return cache_dir / f"debian-{SUITE}-minbase.tar"
    digest = hashlib.sha256(" ".join(FLAVOURS[flavour]).encode()).hexdigest()[:8]
    return cache_dir / f"debian-{SUITE}-{flavour}-{digest}.tar"


def ensure_cached_rootfs(cache_dir: Path, log=print, flavour: str = "minbase") -> Path:
    """Return the cached root filesystem tarball, building it with debootstrap if missing."""
    tarball = cache_path(cache_dir, flavour)
    if tarball.exists():
        return tarball
    cache_dir.mkdir(parents=True, exist_ok=True)
    log(f"building the Debian {SUITE} {flavour} root filesystem with debootstrap (about a minute, once)")
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="build-") as build:
        root = Path(build) / "rootfs"
        run(
            [
                "debootstrap", "--variant=minbase", f"--include={','.join(FLAVOURS[flavour])}",
                SUITE, str(root), MIRROR,
            ],
            timeout=1800,
        )
        # Every clone gets its own host keys and machine id; none may come from the cache.
        for key in (root / "etc/ssh").glob("ssh_host_*"):
            key.unlink()
        (root / "etc/machine-id").write_text("")
        partial = tarball.with_suffix(".partial")
        run(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(partial), "."], timeout=600)
        os.replace(partial, tarball)
    return tarball


def clone_rootfs(tarball: Path, dest: Path, hostname: str, authorized_key: str) -> None:
    """Unpack the cached tarball into dest and make it a distinct host."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    run(["tar", "--numeric-owner", "--xattrs", "-C", str(dest), "-xf", str(tarball)], timeout=600)
    (dest / "etc/hostname").write_text(f"{hostname.split('.')[0]}\n")
    (dest / "etc/machine-id").write_text(secrets.token_hex(16) + "\n")
    run(["ssh-keygen", "-q", "-A", "-f", str(dest)])
    ssh_dir = dest / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(authorized_key.strip() + "\n")
    os.chmod(ssh_dir / "authorized_keys", 0o600)


def host_public_key(rootfs: Path) -> str:
    """The ed25519 host key of a cloned root filesystem, for known_hosts."""
    return (rootfs / "etc/ssh/ssh_host_ed25519_key.pub").read_text().strip()
