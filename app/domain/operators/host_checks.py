"""The status page's checks of each host, judged from the report the host last sent (app/host_report.py):
its services, disks, certificates, the reverse DNS of its sending addresses, Postfix's queue, the backups and
WAL archiving."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from app.domain.operators.status_checks import ERROR, OK, UNKNOWN, WARNING, Check, HostStatus, days_left, disk_space

__all__ = ["ARCHIVE_STALE", "BACKUP_STALE", "REPORT_STALE", "host_status"]

# Hosts report every minute: three missed reports mean the host or its reporter is down.
REPORT_STALE = timedelta(minutes=3)
# Backups run nightly: a newest copy older than this means the last night's run did not write one.
BACKUP_STALE = timedelta(hours=26)
# PostgreSQL hands each finished WAL segment to pgBackRest at once: one still waiting after this is not being
# archived.
ARCHIVE_STALE = timedelta(minutes=10)
DEFERRED_WARNING = 100  # messages Postfix holds for a retry before the queue counts as backed up
RUNNING = ("active", "activating", "reloading")
ENABLED = ("enabled", "enabled-runtime")


def _failed(name: str, probe: Mapping[str, Any]) -> Check:
    return Check(name, UNKNOWN, f"could not be read on the host: {probe['error']}")


def _freshness(reported_at: datetime, now: datetime) -> Check:
    age = now - reported_at
    if age > REPORT_STALE:
        return Check("Reporting", ERROR, f"no report for {int(age.total_seconds() // 60)} minutes: "
                                         "the host or its reporter is down")
    return Check("Reporting", OK, f"reported {int(age.total_seconds())} s ago")


def _release(report: Mapping[str, Any], usual: str | None) -> Check:
    release = report.get("release")
    if not release:
        return Check("Code", UNKNOWN, "the report names no release")
    if usual and release != usual:
        return Check("Code", WARNING, f"code {release} deployed; most hosts run {usual}")
    return Check("Code", OK, f"code {release} deployed")


def _services(units: Any) -> Check:
    if isinstance(units, Mapping):
        return _failed("Services", units)
    failed = sorted(u["Id"] for u in units if u["ActiveState"] == "failed")
    # A unit whose start condition does not hold here (ConditionVirtualization=!container, a missing tty) is
    # not down: systemd skipped it on purpose.
    down = sorted(u["Id"] for u in units if u["UnitFileState"] in ENABLED and u["ActiveState"] not in RUNNING
                  and u["ActiveState"] != "failed" and u["Type"] != "oneshot" and u.get("ConditionResult") != "no")
    if failed or down:
        parts = ([f"failed: {', '.join(failed)}"] if failed else []) + ([f"down: {', '.join(down)}"] if down else [])
        return Check("Services", ERROR, "; ".join(parts))
    running = sum(1 for u in units if u["ActiveState"] == "active" and u["UnitFileState"] in ENABLED)
    return Check("Services", OK, f"{running} enabled services and timers running, none failed")


def _certificates(found: list[Mapping[str, Any]], now: datetime) -> list[Check]:
    checks = []
    for certificate in found:
        name = f"Certificate: {certificate['name']}"
        if "error" in certificate:
            checks.append(_failed(name, certificate))
        else:
            checks.append(days_left(name, datetime.fromisoformat(certificate["not_after"]), now))
    return checks


def _reverse_dns(entry: Mapping[str, Any]) -> Check:
    name = f"Reverse DNS: {entry['address']}"
    expected = entry["expected"]
    if not entry.get("ptr"):
        return Check(name, ERROR, f"{entry.get('error', 'no PTR record')}; it should name {expected}")
    ptr = str(entry["ptr"]).rstrip(".")
    if ptr.lower() != str(expected).rstrip(".").lower():
        return Check(name, ERROR, f"PTR names {ptr}, not the HELO name {expected}: receivers may refuse the mail")
    if not entry.get("forward_confirmed"):
        return Check(name, ERROR, f"PTR names {ptr}, but {ptr} does not resolve back to {entry['address']}")
    return Check(name, OK, f"{ptr}, which resolves back to it")


def _postfix_queue(queue: Mapping[str, Any]) -> Check:
    name = "Postfix queue"
    if "error" in queue:
        return Check(name, ERROR, f"could not be read: {queue['error']}")
    reason = ", ".join(f"{count} {queue_name}" for queue_name, count in queue.items())
    if queue.get("hold"):
        return Check(name, WARNING, f"{reason}: held mail waits for an operator")
    if queue.get("deferred", 0) >= DEFERRED_WARNING:
        return Check(name, WARNING, f"{reason}: many messages wait for a retry")
    return Check(name, OK, reason)


def _last_run(name: str, last_run: Mapping[str, Any]) -> Check:
    if "error" in last_run:
        return _failed(name, last_run)
    if last_run.get("ended") and last_run.get("result") != "success":
        return Check(name, ERROR, f"ended {last_run['ended']} with {last_run['result']} "
                                  f"(exit status {last_run.get('exit_status')})")
    if last_run.get("ended"):
        return Check(name, OK, f"succeeded, ended {last_run['ended']}")
    return Check(name, WARNING, "has not run since the host started")


def _backups(backups: Mapping[str, Any], now: datetime) -> list[Check]:
    run = _last_run("Backups: last run", backups.get("last_run", {}))
    newest = backups.get("newest")
    if not newest:
        kept = Check("Backups: newest copy", WARNING, "no backup written yet")
    else:
        at = datetime.fromisoformat(newest["at"])
        reason = (f"{newest['name']}, {newest['bytes'] / 2**20:.1f} MiB, at {at:%Y-%m-%d %H:%M} UTC; "
                  f"{backups['count']} kept ({backups['total_bytes'] / 2**20:.1f} MiB)")
        kept = Check("Backups: newest copy", ERROR if now - at > BACKUP_STALE else OK, reason)
    remote = backups.get("remote")
    off_host = (Check("Backups: off-host copy", OK, f"copied to {remote} by each run") if remote
                else Check("Backups: off-host copy", WARNING, "kept on this host only: backup_remote is not set"))
    return [run, kept, off_host]


# The units roles/pgbackrest.py installs, by what they do.
_PITR_RUNS = {"postyard-pitr-full.service": "full backup", "postyard-pitr-diff.service": "differential backup",
              "postyard-pitr-mirror.service": "off-host mirror"}


def _point_in_time(pitr: Mapping[str, Any], now: datetime) -> list[Check]:
    """The WAL archive, where the host runs PostgreSQL, and the last run of each of its pgBackRest units."""
    checks = []
    if "waiting" in pitr:
        name = "Point-in-time recovery: WAL archive"
        waiting = pitr["waiting"]
        if not waiting:
            checks.append(Check(name, OK, "every finished WAL segment is archived"))
        else:
            oldest = datetime.fromisoformat(pitr["oldest_waiting"])
            late = now - oldest > ARCHIVE_STALE
            checks.append(Check(
                name, ERROR if late else OK,
                f"{waiting} WAL segments wait for the archive, the oldest since {oldest:%Y-%m-%d %H:%M} UTC"
                + ("; archiving fails (PostgreSQL's log says why) and they fill the disk" if late else "")))
    checks += [_last_run(f"Point-in-time recovery: {_PITR_RUNS.get(unit, unit)}", last_run)
               for unit, last_run in sorted(pitr.get("runs", {}).items())]
    return checks


def host_status(name: str, address: str, report: Mapping[str, Any], reported_at: datetime, now: datetime,
                usual_release: str | None) -> HostStatus:
    """One host's checks from its report (`usual_release`: the code most hosts run); every check the report
    allows, each with its reason."""
    checks = [_freshness(reported_at, now), _release(report, usual_release), _services(report.get("units", []))]
    checks += [disk_space(f"Disk: {disk['path']}", disk["free"], disk["total"]) for disk in report.get("disks", [])]
    checks += _certificates(report.get("certificates", []), now)
    checks += [_reverse_dns(entry) for entry in report.get("reverse_dns", [])]
    if "postfix_queue" in report:
        checks.append(_postfix_queue(report["postfix_queue"]))
    if "backups" in report:
        checks += _backups(report["backups"], now)
    if "point_in_time" in report:
        checks += _point_in_time(report["point_in_time"], now)
    return HostStatus(name, address, reported_at, checks)
