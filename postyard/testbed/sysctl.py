"""Kernel settings the testbed needs raised while it runs, restored when the last testbed goes.

The machine's own values are kept in one file beside the testbeds' states, written by the first
testbed that raises a setting and consumed by the teardown that leaves no testbed behind.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["TESTBED_MINIMUMS", "raise_to_minimums", "restore_originals"]

PROC_SYS = Path("/proc/sys")
# ip_forward: NAT for apt. inotify instances: every booted systemd and its services take several,
# and the default of 128 per user is spent after about eight hosts.
TESTBED_MINIMUMS: dict[str, int] = {
    "net/ipv4/ip_forward": 1,
    "fs/inotify/max_user_instances": 1024,
}


def raise_to_minimums(originals_file: Path, minimums: dict[str, int] = TESTBED_MINIMUMS) -> None:
    """Raise each setting to at least its minimum, remembering the machine's value the first time."""
    originals = json.loads(originals_file.read_text()) if originals_file.exists() else {}
    for key, minimum in minimums.items():
        path = PROC_SYS / key
        current = path.read_text().strip()
        if int(current) < minimum:
            originals.setdefault(key, current)
            path.write_text(f"{minimum}\n")
    originals_file.parent.mkdir(parents=True, exist_ok=True)
    originals_file.write_text(json.dumps(originals))


def restore_originals(originals_file: Path) -> None:
    """Put back what the testbeds raised (call when no testbed is left)."""
    if not originals_file.exists():
        return
    for key, value in json.loads(originals_file.read_text()).items():
        (PROC_SYS / key).write_text(f"{value}\n")
    originals_file.unlink()
