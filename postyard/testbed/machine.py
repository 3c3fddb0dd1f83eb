"""Boot and stop one testbed host: systemd-nspawn in a network namespace prepared for it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

from postyard.testbed.commands import CommandError

__all__ = ["boot", "container_init_pid", "power_cut", "power_off", "wait_for_ssh", "nspawn_pids_for"]

POWER_OFF_SIGNAL = signal.SIGRTMIN + 4  # systemd's "poweroff" request


def boot(machine: str, rootfs: Path, netns: str, log_path: Path) -> int:
    """Start systemd-nspawn detached from this process; return its pid."""
    argv = [
        "systemd-nspawn", "--quiet", "--boot",
        "--register=no", "--keep-unit",  # this machine may have no systemd to register with
        f"--machine={machine}",
        f"--directory={rootfs}",
        f"--network-namespace-path=/run/netns/{netns}",
        "--resolv-conf=off", "--timezone=off", "--link-journal=no",
        "--console=read-only",
        # its own network namespace, so it may manage its own firewall (nspawn drops this by default
        # unless it created the namespace itself)
        "--capability=CAP_NET_ADMIN",
    ]
    # posix_spawn rather than Popen: the machine outlives this call, and reap() waits for it by pid.
    with open(log_path, "ab") as log, open(os.devnull, "rb") as devnull:
        return os.posix_spawnp(argv[0], argv, os.environ, setsid=True, file_actions=[
            (os.POSIX_SPAWN_DUP2, devnull.fileno(), 0),
            (os.POSIX_SPAWN_DUP2, log.fileno(), 1),
            (os.POSIX_SPAWN_DUP2, log.fileno(), 2),
        ])


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie left by our own Popen still answers kill(0)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def container_init_pid(nspawn_pid: int) -> int | None:
    """The container's systemd: the child of the nspawn process."""
    try:
        children = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children").read_text().split()
    except FileNotFoundError:
        return None
    return int(children[0]) if children else None


def _signal(pid: int | None, number: int) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, number)


def _wait_then_kill(nspawn_pid: int, init_pid: int | None, timeout: float) -> None:
    """Wait until nspawn has exited; after timeout, SIGKILL the container's systemd and nspawn."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap(nspawn_pid)
        if not is_running(nspawn_pid):
            return
        time.sleep(0.2)
    for pid in (init_pid, nspawn_pid):
        _signal(pid, signal.SIGKILL)
    time.sleep(0.5)
    reap(nspawn_pid)


def power_off(nspawn_pid: int, timeout: float = 20) -> None:
    """Ask the container's systemd to power off; kill nspawn if it takes longer than timeout."""
    if not is_running(nspawn_pid):
        reap(nspawn_pid)
        return
    init_pid = container_init_pid(nspawn_pid)
    _signal(init_pid, POWER_OFF_SIGNAL)
    _wait_then_kill(nspawn_pid, init_pid, timeout)


def power_cut(nspawn_pid: int) -> None:
    """SIGKILL the container's systemd: the kernel kills every process of its PID namespace at once, with no
    shutdown (its files, a directory of this machine, keep what was written)."""
    init_pid = container_init_pid(nspawn_pid)
    _signal(init_pid, signal.SIGKILL)
    _wait_then_kill(nspawn_pid, init_pid, 20)


def nspawn_pids_for(machine_prefix: str) -> list[int]:
    """systemd-nspawn processes whose --machine= starts with machine_prefix (for sweeping)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if argv and argv[0].endswith(b"systemd-nspawn") and any(
            arg.startswith(f"--machine={machine_prefix}".encode()) for arg in argv
        ):
            found.append(int(proc.name))
    return found


def wait_for_ssh(address: str, timeout: float = 90, nspawn_pid: int | None = None) -> None:
    """Wait until sshd on address sends its banner."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if nspawn_pid is not None and not is_running(nspawn_pid):
            raise CommandError(f"the host at {address} stopped while booting")
        try:
            with socket.create_connection((address, 22), timeout=2) as conn:
                conn.settimeout(5)
                if conn.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise CommandError(f"sshd on {address} did not answer within {timeout:.0f} s")
