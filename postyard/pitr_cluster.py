"""Point-in-time recovery of a clustered database (roles/pgbackrest_member.py): every member goes back to the
same time.

1. The leader archives what was written until now; Patroni stops on every member, the leader last, and the
   cluster's keys in etcd are removed, so that no member's old state is taken for the cluster's.
2. The first member restores from the repository host, replays WAL to the target and is promoted (pg_ctl, outside
   Patroni), then Patroni takes it over as the leader of a cluster it starts afresh.
3. The other members copy it anew from the leader.

Every member's data directory before the restore is kept aside, as a single db host's is (postyard/pitr.py).
If the first member's restore fails, each member gets its own directory back and Patroni starts on the former
leader first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime

from postyard.inventory_hosts import InfraHost
from postyard.pitr import RECOVERY_WITHIN, RESTORE_UNIT, RestoreError, check_target, restore_target
from postyard.ssh import SshError, ssh_run
from roles.patroni import CONFIG as PATRONI_CONFIG
from roles.patroni import SCOPE
from roles.pgbackrest import STANZA
from roles.postgresql import BIN_DIR, DATA_DIR

__all__ = ["PATRONI_UNIT", "restore_cluster_to"]

PATRONI_UNIT = "patroni.service"
# Seconds to wait for Patroni to lead from the restored member, and for every other member to stream from it.
LEADER_WITHIN = 120
MEMBERS_WITHIN = 600

FIRST_MEMBER_SCRIPT = rf"""
set -eEuo pipefail
cd /
target="$1"; aside="$2"
as_postgres() {{ runuser -u postgres -- "$@"; }}
mv {DATA_DIR} "$aside"
install -d -o postgres -g postgres -m 700 {DATA_DIR}
echo "the data directory it replaces is kept at $aside"
as_postgres pgbackrest --stanza={STANZA} --type=time "--target=$target" --target-action=promote restore
as_postgres {BIN_DIR}/pg_ctl -D {DATA_DIR} -l /var/log/postgresql/postyard-restore.log -w -t {RECOVERY_WITHIN} start
for _ in $(seq {RECOVERY_WITHIN}); do
    if [ "$(as_postgres psql -XAtc 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; then
        as_postgres {BIN_DIR}/pg_ctl -D {DATA_DIR} -m fast -w stop
        # the target is reached: Patroni must not start the member towards it again
        sed -i '/^recovery_target/d' {DATA_DIR}/postgresql.auto.conf
        echo "replayed to $target and promoted"
        exit 0
    fi
    sleep 1
done
echo "the restored data directory is still in recovery after {RECOVERY_WITHIN} s" >&2
as_postgres {BIN_DIR}/pg_ctl -D {DATA_DIR} -m immediate -w stop || true
false
"""


def _patronictl(host: InfraHost, arguments: str, input: str | None = None) -> str:
    return ssh_run(host, f"patronictl -c {PATRONI_CONFIG} {arguments}", input=input, timeout=120)


def _listing(host: InfraHost) -> list[dict[str, object]]:
    try:
        return json.loads(_patronictl(host, "list -f json") or "[]")
    except (SshError, ValueError):
        return []


def _leader(members: list[InfraHost]) -> InfraHost:
    names = {str(m["Member"]) for m in _listing(members[0]) if m["Role"] == "Leader" and m["State"] == "running"}
    leader = next((host for host in members if host.fqdn in names), None)
    if leader is None:
        raise RestoreError("the cluster has no running leader: restore once Patroni reports one (patronictl list)")
    return leader


def _wait(what: str, within: float, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + within
    while not done():
        if time.monotonic() > deadline:
            raise SshError("cluster", f"{what} within {within:.0f} s", 1, "patronictl list shows where it stands")
        time.sleep(2)


def _running(members: list[InfraHost], expected: int) -> bool:
    listed = _listing(members[0])
    leaders = [m for m in listed if m["Role"] == "Leader" and m["State"] == "running"]
    return len(leaders) == 1 and sum(m["State"] in ("running", "streaming") for m in listed) == expected


def _start_patroni(host: InfraHost) -> None:
    ssh_run(host, ["systemctl", "start", PATRONI_UNIT])


def _put_back(members: list[InfraHost], leader: InfraHost, first: InfraHost, aside: str,
              log: Callable[[str], None]) -> None:
    """Undo a restore that failed on the first member: stop what it left running there, give it its own data
    directory back (only where that was moved aside), clear the cluster's keys again, and start Patroni on the
    former leader first."""
    log("the restore failed: every member gets its own data directory back, the former leader first")
    ssh_run(first, ["sh", "-c", f"systemctl stop {RESTORE_UNIT} {PATRONI_UNIT}; "
                                f"runuser -u postgres -- {BIN_DIR}/pg_ctl -D {DATA_DIR} -m immediate -w stop; true"])
    ssh_run(first, ["sh", "-c", f"if [ -d {aside} ]; then rm -rf {DATA_DIR} && mv {aside} {DATA_DIR}; fi"])
    _remove_cluster_keys(first, leader)
    for host in [leader, *(m for m in members if m is not leader)]:
        _start_patroni(host)
        if host is leader:
            _wait("the former leader leads again", LEADER_WITHIN, lambda: _running([leader], 1))


def _remove_cluster_keys(host: InfraHost, leader: InfraHost) -> None:
    # the leader's name answers patronictl's third question, asked only while etcd still names a leader
    _patronictl(host, f"remove {SCOPE}", input=f"{SCOPE}\nYes I am aware\n{leader.fqdn}\n")


def restore_cluster_to(members: list[InfraHost], when: datetime, log: Callable[[str], None]) -> dict[str, str]:
    """Restore the clustered database to its state at `when`; return where each member's replaced data directory
    is kept, by host name."""
    members = sorted(members, key=lambda host: host.name)
    leader = _leader(members)
    now = check_target(leader, when)
    target = restore_target(when)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    asides = {host.name: f"{DATA_DIR}.before-restore-{stamp}" for host in members}
    first = members[0]
    log(f"restoring the clustered database to {target} on {first.name}; each member's current data directory is "
        f"kept at {asides[first.name]}")
    # Recovery stops at the first commit past the target, and fails when the archive holds none: write one, and
    # archive everything written until now.
    ssh_run(leader, ["runuser", "-u", "postgres", "--", "psql", "-XAtqc", "SELECT txid_current()"])
    ssh_run(leader, ["runuser", "-u", "postgres", "--", "pgbackrest", f"--stanza={STANZA}", "check"])
    for host in [*(m for m in members if m is not leader), leader]:
        ssh_run(host, ["systemctl", "stop", PATRONI_UNIT], timeout=120)
    log("Patroni stopped on every member")
    try:
        _remove_cluster_keys(first, leader)
        command = ["systemd-run", f"--unit={RESTORE_UNIT}", "--pipe", "--wait", "--collect", "--quiet",
                   "bash", "-c", FIRST_MEMBER_SCRIPT, "restore", target, asides[first.name]]
        for line in ssh_run(first, command, timeout=RECOVERY_WITHIN + 600).splitlines():
            log(line)
        _start_patroni(first)
        _wait(f"{first.name} leads from the restored data", LEADER_WITHIN, lambda: _running([first], 1))
    except BaseException:
        _put_back(members, leader, first, asides[first.name], log)
        raise
    log(f"{first.name} leads; the other members copy it anew")
    for host in members[1:]:
        ssh_run(host, ["mv", DATA_DIR, asides[host.name]])
        _start_patroni(host)
    _wait("every member runs", MEMBERS_WITHIN, lambda: _running(members, len(members)))
    return asides
