"""What the fault test does on the testbed's hosts and reads back: SIGKILLs that wait for systemd to start the
unit again, the spool on a small filesystem of its own, packets to the database dropped, what reached the
remote MX and when, the emails as the database holds them, and the table of faults."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from postyard.appliance_client import TestbedAppliance
from postyard.ssh import SshError, ssh_run
from postyard.testbed import internet
from postyard.testbed.state import HostRecord
from tests.testbed.fault_load import ACCEPTED, Attempt, Ledger

__all__ = ["CUT_MARGIN", "Fault", "Host", "arrivals", "caught_by_cuts", "client_downtime", "drop_database_packets",
           "drop_packets", "email_rows", "fault_table", "release_packets", "spool_fill", "spool_free",
           "spool_on_tmpfs", "spool_restore", "submitted_on", "wait_until"]

POSTFIX_UNIT = "postfix@-.service"
SPOOL = "/var/spool/postfix"
SPOOL_TMPFS = "/run/postyard-fault-spool"
SPOOL_SIZE = "128m"
# What the spool keeps free once filled: below 1.5 x message_size_limit (25 MB), under which Postfix's SMTP
# server answers MAIL FROM with 452 4.3.1 Insufficient system storage.
SPOOL_LEFT_FREE = 16 * 1024 * 1024
SPOOL_FILLER = f"{SPOOL}/postyard-fault-filler"
# Postfix's queue directories (the files in them are mail, or per-message logs).
QUEUES = ("active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming", "maildrop", "saved",
          "trace")
NFT_TABLE = "inet postyard_fault"
# Seconds before a mail host's power cut in which a message may have reached the remote MX while the host kept no
# trace of it: Postfix's smtp client had the 250 but not yet the queue file marked (the message goes again after
# the boot), or Postfix removed the file but its log line was still on its way to the journal (the email stays
# `sent`). SMTP gives a sender no way to learn which (docs/sending.md, "A mail host's power cut").
CUT_MARGIN = 3.0

# Runs on the internet host: [Message-ID, arrival time] of every message in the Maildir on the given domains.
READ_ARRIVALS = r"""
import json, pathlib, re, sys
suffixes = tuple(f"@{d}>" for d in sys.argv[2:])
found = []
for folder in ("new", "cur"):
    if not pathlib.Path(sys.argv[1], folder).is_dir():  # nothing delivered yet
        continue
    for path in pathlib.Path(sys.argv[1], folder).iterdir():
        try:
            head = path.read_bytes()[:16384]
            arrived = path.stat().st_mtime
        except FileNotFoundError:
            continue
        match = re.search(rb"(?im)^Message-ID:\s*(<[^>\s]+>)", head)
        if match and match.group(1).decode().endswith(suffixes):
            found.append([match.group(1).decode(), arrived])
print(json.dumps(found))
"""


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 1.0) -> float:
    """Poll until the condition holds; the wall-clock time it first did."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {timeout:.0f} s"
        time.sleep(interval)
    return time.time()


@dataclass(frozen=True)
class Host:
    """One testbed host, over SSH."""

    bed: TestbedAppliance
    record: HostRecord

    def run(self, command: str, timeout: float = 60) -> str:
        return ssh_run(self.bed.target(self.record), command, timeout=timeout)

    def main_pid(self, unit: str) -> str:
        return self.run(f"systemctl show -P MainPID {shlex.quote(unit)}").strip()

    def active_with_new_pid(self, unit: str, old_pid: str) -> bool:
        try:
            shown = self.run(f"systemctl show --property=ActiveState,MainPID {shlex.quote(unit)}")
        except SshError:  # the host is not answering yet
            return False
        state = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
        return state.get("ActiveState") == "active" and state.get("MainPID") not in (None, "0", old_pid)

    def sigkill(self, units: Iterable[str], timeout: float = 90) -> float:
        """SIGKILL each unit's main process (only it: the way a crash or the OOM killer ends it); the wall-clock
        time all are active again, each with a new main process."""
        pids = {unit: self.main_pid(unit) for unit in units}
        assert "0" not in pids.values(), f"a unit has no main process: {pids}"
        self.run(f"kill -KILL {' '.join(pids.values())}")
        back = 0.0
        for unit, pid in pids.items():
            back = max(back, wait_until(lambda u=unit, p=pid: self.active_with_new_pid(u, p), timeout,
                                        f"{unit} active again after SIGKILL", interval=0.3))
        return back

    def is_active(self, unit: str) -> bool:
        try:
            return self.run(f"systemctl is-active {shlex.quote(unit)} || true").strip() == "active"
        except SshError:
            return False


# -- the spool on a filesystem of its own ------------------------------------------------------------


def spool_on_tmpfs(host: Host) -> None:
    """Postfix stopped, a small tmpfs mounted over its spool with the spool's layout but none of its queue files
    (those wait, untouched, on the disk underneath: a queue file copied gets a new inode, and Postfix renames
    it to match, so that the log follower could no longer tell whose it is), Postfix started again."""
    queue_files = f"'{SPOOL_TMPFS}/({'|'.join(QUEUES)})/.*'"
    host.run(f"set -e; systemctl stop {POSTFIX_UNIT}; mkdir -p {SPOOL_TMPFS}; "
             f"mount -t tmpfs -o size={SPOOL_SIZE},mode=755 postyard-fault-spool {SPOOL_TMPFS}; "
             f"cp -a {SPOOL}/. {SPOOL_TMPFS}/; "
             f"find {SPOOL_TMPFS} -type f -regextype posix-extended -regex {queue_files} -delete; "
             f"mount --bind {SPOOL_TMPFS} {SPOOL}; systemctl start {POSTFIX_UNIT}")


def spool_fill(host: Host) -> None:
    """A file takes all but SPOOL_LEFT_FREE bytes of the spool's filesystem."""
    available = int(host.run(f"df -B1 --output=avail {SPOOL} | tail -n 1").strip())
    host.run(f"fallocate -l {available - SPOOL_LEFT_FREE} {SPOOL_FILLER}")


def spool_free(host: Host) -> None:
    host.run(f"rm -f {SPOOL_FILLER}")


def spool_restore(host: Host, worker_unit: str, timeout: float = 120) -> None:
    """Back to the spool on the disk, with nothing lost: the worker stopped (no new mail reaches Postfix), the
    tmpfs queue left to empty, Postfix stopped, the tmpfs unmounted (the queue files that waited underneath
    come back), Postfix and the worker started. Does nothing when the spool is not on the tmpfs."""
    if host.run(f"mountpoint -q {SPOOL} && echo mounted || true").strip() != "mounted":
        return
    host.run(f"rm -f {SPOOL_FILLER}; systemctl stop {worker_unit}")
    try:
        queued = f"find {' '.join(f'{SPOOL}/{queue}' for queue in ('incoming', 'active', 'deferred', 'maildrop'))} " \
                 "-type f | wc -l"
        wait_until(lambda: host.run(queued).strip() == "0", timeout, "Postfix's queue on the tmpfs empty", interval=2)
        # The host report's `postqueue -j` may be in the spool for a moment: each unmount is tried again.
        host.run(f"set -e; systemctl stop {POSTFIX_UNIT}; {_unmount(SPOOL)}; {_unmount(SPOOL_TMPFS)}; "
                 f"systemctl start {POSTFIX_UNIT}")
    finally:
        host.run(f"systemctl start {worker_unit}")


def _unmount(path: str, attempts: int = 20) -> str:
    """A shell step that unmounts `path`, trying again for a while when it is busy, and fails if it never could."""
    return (f"for i in $(seq {attempts}); do umount {path} && break; sleep 0.5; done; "
            f"if mountpoint -q {path}; then echo '{path} still mounted' >&2; exit 1; fi")


# -- packets to the database dropped --------------------------------------------------------------------


def drop_packets(host: Host, hook: str, match: str) -> None:
    """Every packet matching `match` dropped at the host's `hook` (input or output), so that the other end hears
    nothing (no refusal), until `release_packets`."""
    host.run(f"nft add table {NFT_TABLE}; "
             f"nft 'add chain {NFT_TABLE} {hook} {{ type filter hook {hook} priority -50; policy accept; }}'; "
             f"nft 'add rule {NFT_TABLE} {hook} {match} drop'")


def release_packets(host: Host) -> None:
    host.run(f"nft delete table {NFT_TABLE} 2>/dev/null || true")


def drop_database_packets(db_host: Host) -> None:
    """Every packet to PostgreSQL's port dropped on the db host, so clients hear nothing (no refusal)."""
    drop_packets(db_host, "input", "tcp dport 5432")


# -- what arrived, what the database holds --------------------------------------------------------------


def arrivals(bed: TestbedAppliance, domains: Iterable[str]) -> dict[str, list[float]]:
    """Message-ID -> the arrival time of each copy at the remote MX, for the domains' messages."""
    listing = bed.on_internet_host(["python3", "-c", READ_ARRIVALS, internet.MAILDIR, *domains], timeout=120)
    found: dict[str, list[float]] = {}
    for message_id, arrived in json.loads(listing):
        found.setdefault(message_id, []).append(arrived)
    return found


def email_rows(bed: TestbedAppliance, domains: Iterable[str]) -> dict[str, tuple[str, str, str]]:
    """Message-ID -> (email id, state, last event) of every email from the domains, read on the db host."""
    patterns = " OR ".join(f"message_id LIKE '%@{d}>'" for d in domains)
    query = f"SELECT message_id, id, state, coalesce(last_event, '-') FROM emails WHERE {patterns}"
    rows = ssh_run(bed.target(bed.db), f"runuser -u postgres -- psql -d postyard -AtF' ' -c {shlex.quote(query)}",
                   timeout=120)
    return {message_id: (email_id, state, event)
            for message_id, email_id, state, event in (line.split() for line in rows.splitlines())}


# -- the table ----------------------------------------------------------------------------------------


@dataclass
class Fault:
    """One fault as injected: when, what was in flight, and when its unit was back."""

    name: str
    injected: float
    in_flight: set[str]
    released: float = 0.0  # when an outage ended (the injection itself for a kill)
    unit_back: float = 0.0
    flow_from: float = 0.0  # mail accepted from then on shows that mail flows again (the release, unless later)
    channels: tuple[str, ...] = ("api", "smtp")  # whose mail shows that mail flows again
    cut_host: str = ""  # a host whose power was cut, and from when until its processes were gone
    cut_between: tuple[float, float] = (0.0, 0.0)


def _flow_back(fault: Fault, accepted: dict[str, Attempt], arrived: dict[str, list[float]]) -> float | None:
    """When the first email accepted after the fault was released reached the remote MX."""
    times = [min(arrived[m]) for m, a in accepted.items()
             if a.at >= max(fault.released, fault.flow_from) and a.channel in fault.channels and m in arrived]
    return min(times) if times else None


def client_downtime(ledger: Ledger, channel: str, start: float, until: float) -> float:
    """The longest time the channel's clients went unserved between start and until: from the sending of a
    request that was not accepted to the next acceptance (or to the last answer before `until`)."""
    answers = sorted((a.at, a.sent or a.at, a.answer == ACCEPTED) for a in list(ledger.attempts)
                     if a.channel == channel and start <= a.at < until)
    longest = 0.0
    failing_since: float | None = None
    for at, sent, accepted in answers:
        if not accepted and failing_since is None:
            failing_since = sent
        elif accepted and failing_since is not None:
            longest, failing_since = max(longest, at - failing_since), None
    if failing_since is not None:
        longest = max(longest, answers[-1][0] - failing_since)
    return longest


def submitted_on(bed: TestbedAppliance, domains: Iterable[str]) -> dict[str, str]:
    """Message-ID -> the mail host whose Postfix the email was handed to, for the domains' emails."""
    patterns = " OR ".join(f"message_id LIKE '%@{d}>'" for d in domains)
    query = f"SELECT message_id, submitted_on FROM emails WHERE submitted_on IS NOT NULL AND ({patterns})"
    rows = ssh_run(bed.target(bed.db), f"runuser -u postgres -- psql -d postyard -AtF' ' -c {shlex.quote(query)}",
                   timeout=120)
    return dict(line.split() for line in rows.splitlines())


def caught_by_cuts(faults: list[Fault], arrived: dict[str, list[float]], submitted: dict[str, str]) -> set[str]:
    """The messages a power-cut mail host was handing over as its power went: submitted to that host, their first
    copy at the remote MX within CUT_MARGIN before the cut, and a second one, if any, after its processes were
    gone (sent again from the queue after the boot)."""
    caught = set()
    for fault in faults:
        if fault.cut_host:
            start, end = fault.cut_between
            caught |= {m for m, times in arrived.items()
                       if submitted.get(m) == fault.cut_host and start - CUT_MARGIN <= min(times) <= end
                       and all(t >= end for t in sorted(times)[1:])}
    return caught


def fault_table(faults: list[Fault], ledger: Ledger, arrived: dict[str, list[float]],
                caught: set[str] | frozenset[str] = frozenset()) -> tuple[str, int, int]:
    """The printed table (one row per fault: in flight when injected; the longest time the API's clients went
    unserved; of those in flight and of the emails accepted until the next fault, how many were lost and how
    many duplicated, leaving out those `caught` by a power cut; the recovery time), and the totals lost and
    duplicated over every accepted email."""
    accepted = ledger.accepted()
    lines = [f"{'fault':<58} {'in flight':>9} {'API down':>9} {'lost':>5} {'dup':>5} {'recovery':>9}"]
    for index, fault in enumerate(faults):
        until = faults[index + 1].injected if index + 1 < len(faults) else float("inf")
        window = fault.in_flight | {m for m, a in accepted.items() if fault.injected <= a.at < until}
        lost = sum(m not in arrived for m in window)
        duplicated = sum(len(arrived.get(m, [])) > 1 for m in window - caught)
        flow = _flow_back(fault, accepted, arrived)
        recovery = "never" if flow is None else f"{max(flow, fault.unit_back) - fault.released:.1f} s"
        down = client_downtime(ledger, "api", fault.injected, until)
        lines.append(f"{fault.name:<58} {len(fault.in_flight):>9} {down:>8.1f}s {lost:>5} {duplicated:>5} "
                     f"{recovery:>9}")
    lost_total = sum(m not in arrived for m in accepted)
    duplicated_total = sum(len(arrived.get(m, [])) > 1 for m in set(accepted) - caught)
    lines.append(f"{'all accepted emails (' + str(len(accepted)) + ')':<58} {'':>9} {'':>9} {lost_total:>5} "
                 f"{duplicated_total:>5} {'':>9}")
    if caught:
        twice = sum(len(arrived.get(m, [])) > 1 for m in caught)
        lines.append(f"caught by a mail host's power cut as they were handed over: {len(caught)}, of which {twice} "
                     "went again after its boot")
    return "\n".join(lines), lost_total, duplicated_total
