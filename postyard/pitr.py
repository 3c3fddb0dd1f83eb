"""Point-in-time recovery of a db host's cluster from its pgBackRest repository (roles/pgbackrest.py).

The restore replaces the live cluster, so the appliance runs from it as it is, and keeps the one it replaces:
that data directory is moved aside on the same volume and named, for the operator to remove once the
restored cluster is checked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from postyard.inventory_hosts import InfraHost
from postyard.ssh import SshError, ssh_run
from roles.pgbackrest import STANZA
from roles.postgresql import DATA_DIR, UNIT

__all__ = ["RECOVERY_WITHIN", "RESTORE_UNIT", "RestoreError", "check_target", "parse_target_time", "restore_target",
           "restore_to", "restorable_since"]

# Seconds the restored cluster may replay WAL before the restore counts as failed (and is undone).
RECOVERY_WITHIN = 3000
# The restore runs as a unit of its own, so a dropped SSH connection does not stop it halfway.
RESTORE_UNIT = "postyard-restore"

RESTORE_SCRIPT = rf"""
set -eEuo pipefail  # -E: a failure inside a function reaches the ERR trap too
cd /
target="$1"; aside="$2"
as_postgres() {{ runuser -u postgres -- "$@"; }}
if systemctl is-active --quiet {UNIT}; then
    # Recovery stops at the first commit past the target and fails when the archive holds none: write
    # one, and archive everything written until now.
    as_postgres psql -XAtqc 'SELECT txid_current()' >/dev/null
    as_postgres pgbackrest --stanza={STANZA} check
    echo "archived the WAL written until now"
fi
systemctl stop {UNIT}
mv {DATA_DIR} "$aside"
put_back() {{
    echo "the restore failed: putting back the cluster it was to replace" >&2
    systemctl stop {UNIT} || true
    rm -rf {DATA_DIR}
    mv "$aside" {DATA_DIR}
    systemctl start {UNIT}
    exit 1
}}
trap put_back ERR
install -d -o postgres -g postgres -m 700 {DATA_DIR}
echo "the cluster it replaces is kept at $aside"
as_postgres pgbackrest --stanza={STANZA} --type=time "--target=$target" --target-action=promote restore
systemctl start {UNIT}
for _ in $(seq {RECOVERY_WITHIN}); do
    if [ "$(as_postgres psql -XAtc 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; then
        exit 0
    fi
    sleep 1
done
echo "the restored cluster is still in recovery after {RECOVERY_WITHIN} s" >&2
false
"""


class RestoreError(ValueError):
    """The restore was refused before anything on the host changed."""


def parse_target_time(text: str) -> datetime:
    """An ISO 8601 time with its UTC offset (2026-12-01T14:03:00Z, 2026-12-01 15:03:00+01:00)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise RestoreError(f"{text!r} is not an ISO 8601 time, e.g. 2026-12-01T14:03:00Z") from None
    if when.tzinfo is None:
        raise RestoreError(f"{text!r} has no UTC offset: add Z or +HH:MM")
    return when.astimezone(UTC)


def restorable_since(host: InfraHost) -> datetime | None:
    """When the oldest backup in the repository ended: the earliest time a restore can reach."""
    info = json.loads(_pgbackrest(host, "--output=json", "info"))
    stops = [backup["timestamp"]["stop"] for stanza in info for backup in stanza.get("backup", [])]
    return datetime.fromtimestamp(min(stops), UTC) if stops else None


def check_target(host: InfraHost, when: datetime) -> datetime:
    """Refuse a time the repository cannot reach (before its oldest backup, or to come); return the host's clock."""
    since = restorable_since(host)
    if since is None:
        raise RestoreError(f"{host.name}'s repository holds no backup yet")
    if when <= since:
        raise RestoreError(f"the oldest backup on {host.name} ended at {since.isoformat()}: choose a later time")
    now = datetime.fromtimestamp(int(ssh_run(host, ["date", "+%s"])), UTC)
    if when >= now:
        raise RestoreError(f"{when.isoformat()} is not in the past ({host.name}'s clock reads {now.isoformat()})")
    return now


def restore_target(when: datetime) -> str:
    """The time as pgBackRest's --target takes it."""
    return when.strftime("%Y-%m-%d %H:%M:%S.%f+00")


def restore_to(host: InfraHost, when: datetime, log: Callable[[str], None]) -> str:
    """Restore the host's cluster to its state at `when`; return where the replaced data directory is kept."""
    now = check_target(host, when)
    target = restore_target(when)
    aside = f"{DATA_DIR}.before-restore-{now.strftime('%Y%m%dT%H%M%SZ')}"
    log(f"restoring {host.name}'s cluster to {target}; the current one is kept at {aside}")
    command = ["systemd-run", f"--unit={RESTORE_UNIT}", "--pipe", "--wait", "--collect", "--quiet",
               "bash", "-c", RESTORE_SCRIPT, "restore", target, aside]
    try:
        output = ssh_run(host, command, timeout=RECOVERY_WITHIN + 600)
    except SshError as error:
        raise SshError(error.host, f"restore to {target} (on failure it puts the replaced cluster back; if it "
                                   f"could not, that cluster is at {aside})", error.status, error.stderr) from None
    for line in output.splitlines():
        log(line)
    return aside


def _pgbackrest(host: InfraHost, *arguments: str) -> str:
    return ssh_run(host, ["runuser", "-u", "postgres", "--", "pgbackrest", f"--stanza={STANZA}", *arguments])
