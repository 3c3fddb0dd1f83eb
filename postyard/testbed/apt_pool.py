"""A pool of downloaded .deb files shared by every testbed host, across hosts and runs.

Each host gets the pool hard-linked into its own /var/cache/apt/archives when it is created, and
what it downloaded is linked back into the pool when it is removed. Hosts never share a live
directory, so each apt keeps its own lock; apt checks every file's hash before using it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["seed", "harvest"]


def _link_debs(source: Path, target: Path) -> int:
    linked = 0
    if not source.is_dir():
        return 0
    target.mkdir(parents=True, exist_ok=True)
    for deb in source.glob("*.deb"):
        destination = target / deb.name
        if destination.exists():
            continue
        try:
            os.link(deb, destination)
            linked += 1
        except OSError:
            continue  # another filesystem, or a race with another harvest: the pool is only a cache
    return linked


def seed(pool: Path, rootfs: Path) -> int:
    """Link the pool's packages into a host's apt archive; returns how many."""
    return _link_debs(pool, rootfs / "var/cache/apt/archives")


def harvest(pool: Path, rootfs: Path) -> int:
    """Link a host's downloaded packages back into the pool; returns how many were new."""
    return _link_debs(rootfs / "var/cache/apt/archives", pool)
