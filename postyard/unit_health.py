"""Which systemd units have failed on a host: `postyard status` lists them for every host.

A failed nightly backup (postyard-backup.service, a oneshot) stays `failed` until a later run
succeeds, and so does any other unit that died and was not brought back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from postyard.ssh import HasSshTarget, SshError, SshTarget, ssh_run

__all__ = ["FAILED_UNITS", "failed_units", "report_failed_units"]

FAILED_UNITS = ["systemctl", "list-units", "--state=failed", "--plain", "--no-legend", "--no-pager"]


def failed_units(host: SshTarget | HasSshTarget) -> list[str]:
    """The names of the host's failed units, sorted."""
    lines = ssh_run(host, FAILED_UNITS, timeout=30).splitlines()
    return sorted(line.replace("●", " ").split()[0] for line in lines if line.strip())


def report_failed_units(hosts: Iterable[HasSshTarget], out: Callable[[str], None] = print) -> int:
    """Print each host's failed units (or why it could not be asked); 1 when any host has one or was not reached."""
    status = 0
    out("failed units:")
    for host in hosts:
        name = host.ssh_target().name
        try:
            failed = failed_units(host)
        except SshError as error:
            out(f"    {name}: not reached ({error.stderr.strip()[-200:] or 'no answer'})")
            status = 1
            continue
        out(f"    {name}: {', '.join(failed) or 'none'}")
        status = status or int(bool(failed))
    return status
