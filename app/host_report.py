"""Every host's status report: what the host alone can see (its units, disks, certificates, reverse DNS, mail
queue, backups and WAL archiving), collected once a minute and handed to the database for the operators' status page.

It runs on every host, the database and cache hosts included, which have no virtualenv: it uses only
Python's standard library and Debian's `psql`, `openssl`, `host`, `systemctl` and `postqueue`. It only collects;
app/domain/operators/host_checks.py judges. roles/host_report.py installs it with its settings file.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "REPORT_FUNCTION", "backups", "certificates", "collect", "disks", "last_run", "main", "parse_enddate",
    "parse_host_answers", "parse_postqueue", "parse_units", "point_in_time", "postfix_queue", "report_once",
    "reverse_dns", "send", "units",
]

REPORT_FUNCTION = "postyard_report_host"  # migration 0012
COMMAND_TIMEOUT = 20  # seconds any one command may take
INTERVAL = 60  # seconds between reports
UNIT_PROPERTIES = ("Id", "Type", "ActiveState", "SubState", "UnitFileState", "Result", "ConditionResult")


def _run(argv: list[str], input_text: str | None = None) -> str:
    return subprocess.run(argv, input=input_text, capture_output=True, text=True, check=True,
                          timeout=COMMAND_TIMEOUT).stdout


def _failure(exc: Exception) -> dict[str, str]:
    """What a probe that could not run reports instead of its findings."""
    if isinstance(exc, subprocess.CalledProcessError):
        detail = (exc.stderr or "").strip().splitlines()
        return {"error": f"{exc.cmd[0]} exited {exc.returncode}" + (f": {detail[-1]}" if detail else "")}
    return {"error": f"{type(exc).__name__}: {exc}"}


def parse_units(show_output: str) -> list[dict[str, str]]:
    """`systemctl show -p ...` of several units: one block of key=value lines per unit, blank-line separated."""
    found = []
    for block in show_output.strip().split("\n\n"):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if fields.get("Id"):
            found.append({key: fields.get(key, "") for key in UNIT_PROPERTIES})
    return found


def units() -> dict[str, Any]:
    """Every loaded service and timer with its state; the page calls an enabled one that is not running down."""
    listed = _run(["systemctl", "list-units", "--type=service,timer", "--all", "--plain", "--no-legend", "--no-pager"])
    names = [line.lstrip("● ").split()[0] for line in listed.splitlines() if line.lstrip("● ")]
    if not names:
        return {"units": []}
    shown = _run(["systemctl", "show", "--no-pager", f"--property={','.join(UNIT_PROPERTIES)}", *names])
    return {"units": parse_units(shown)}


def disks(paths: list[str]) -> list[dict[str, Any]]:
    """Free and total bytes of each file system holding one of `paths`, each file system once."""
    seen: set[int] = set()
    found = []
    for path in paths:
        try:
            device = os.stat(path).st_dev
            usage = os.statvfs(path)
        except OSError:
            continue
        if device in seen:
            continue
        seen.add(device)
        found.append({"path": path, "total": usage.f_blocks * usage.f_frsize, "free": usage.f_bavail * usage.f_frsize})
    return found


def parse_enddate(output: str) -> str:
    """`openssl x509 -enddate` ("notAfter=Nov 30 12:00:00 2027 GMT") as an ISO 8601 UTC time."""
    value = output.strip().removeprefix("notAfter=")
    return datetime.strptime(value, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC).isoformat()


def certificates(named: dict[str, str], internal_glob: str) -> list[dict[str, str]]:
    """When each certificate ends: the named files, and every internal one found by the glob (by its directory)."""
    files = dict(named)
    for path in sorted(glob.glob(internal_glob)):
        files.setdefault(f"internal: {os.path.basename(os.path.dirname(path))}", path)
    found = []
    for name, path in files.items():
        if not os.path.exists(path):
            continue
        try:
            found.append({"name": name, "path": path,
                          "not_after": parse_enddate(_run(["openssl", "x509", "-noout", "-enddate", "-in", path]))})
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            found.append({"name": name, "path": path, **_failure(exc)})
    return found


def parse_host_answers(output: str, marker: str) -> list[str]:
    """The values of `host`'s answer lines that carry `marker` ("domain name pointer", "has address"...)."""
    return [line.split(marker, 1)[1].strip().rstrip(".") for line in output.splitlines() if marker in line]


def _dns(argv: list[str], marker: str) -> list[str]:
    """What the resolver answers (`host`, never /etc/hosts, which names this host 127.0.1.1): none when the name
    does not exist."""
    completed = subprocess.run(["host", "-W", "5", *argv], capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                               check=False)
    return parse_host_answers(completed.stdout, marker)


def reverse_dns(addresses: list[str], expected: str) -> list[dict[str, Any]]:
    """Each sending address's PTR name in DNS, whether it is the HELO name, and whether that name resolves back."""
    found = []
    for address in addresses:
        entry: dict[str, Any] = {"address": address, "expected": expected}
        try:
            names = _dns([address], "domain name pointer")
            if not names:
                found.append({**entry, "ptr": None, "error": "no PTR record"})
                continue
            kind, marker = ("AAAA", "has IPv6 address") if ":" in address else ("A", "has address")
            forward = _dns(["-t", kind, names[0]], marker)
        except (OSError, subprocess.SubprocessError) as exc:
            found.append({**entry, "ptr": None, **_failure(exc)})
            continue
        found.append({**entry, "ptr": names[0], "forward_confirmed": address in forward})
    return found


def parse_postqueue(output: str) -> dict[str, int]:
    """`postqueue -j`: one JSON object per queued message; the count in each of Postfix's queues."""
    counts = Counter(json.loads(line)["queue_name"] for line in output.splitlines() if line.strip())
    return {queue: counts.get(queue, 0) for queue in ("maildrop", "incoming", "active", "deferred", "hold")}


def postfix_queue() -> dict[str, Any]:
    try:
        return parse_postqueue(_run(["postqueue", "-j"]))
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
        return _failure(exc)


def backups(directory: str, unit: str, remote: str | None) -> dict[str, Any]:
    """The newest encrypted dump, how many there are, and how the backup service's last run ended."""
    dumps = []
    for path in glob.glob(os.path.join(directory, "*.dump.age")):
        try:
            stat = os.stat(path)
        except OSError:
            continue
        dumps.append((stat.st_mtime, stat.st_size, os.path.basename(path)))
    report: dict[str, Any] = {"count": len(dumps), "total_bytes": sum(size for _, size, _ in dumps), "remote": remote}
    if dumps:
        mtime, size, name = max(dumps)
        report["newest"] = {"name": name, "bytes": size, "at": datetime.fromtimestamp(mtime, UTC).isoformat()}
    report["last_run"] = last_run(unit)
    return report


def last_run(unit: str) -> dict[str, str]:
    """How a oneshot unit's last run since the host started ended (`ended` empty: it has not run)."""
    try:
        shown = _run(["systemctl", "show", "--no-pager", "--property=Result,ExecMainExitTimestamp,ExecMainStatus",
                      unit])
    except (OSError, subprocess.SubprocessError) as exc:
        return _failure(exc)
    fields = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    return {"result": fields.get("Result", ""), "exit_status": fields.get("ExecMainStatus", ""),
            "ended": fields.get("ExecMainExitTimestamp", "")}


def point_in_time(archive_status: str | None, units: list[str]) -> dict[str, Any]:
    """The WAL segments PostgreSQL has not yet archived (the oldest's age), where it runs here, and the last run
    of each pgBackRest unit (backups, the off-host mirror)."""
    report: dict[str, Any] = {"runs": {unit: last_run(unit) for unit in units}}
    if archive_status is None:
        return report
    waiting = []
    for path in glob.glob(os.path.join(archive_status, "*.ready")):
        try:
            waiting.append(os.stat(path).st_mtime)
        except OSError:
            continue
    report["waiting"] = len(waiting)
    if waiting:
        report["oldest_waiting"] = datetime.fromtimestamp(min(waiting), UTC).isoformat()
    return report


def collect(settings: dict[str, Any]) -> dict[str, Any]:
    """The report, each probe's failure recorded in its place rather than stopping the others."""
    report: dict[str, Any] = {
        "host": settings["host"], "groups": settings.get("groups", []), "release": settings.get("release"),
        "collected_at": datetime.now(UTC).isoformat(),
    }
    try:
        report.update(units())
    except (OSError, subprocess.SubprocessError) as exc:
        report["units"] = _failure(exc)
    report["disks"] = disks(settings.get("disk_paths", ["/"]))
    report["certificates"] = certificates(settings.get("certificates", {}), settings.get("internal_certificates", ""))
    if settings.get("sending_addresses"):
        report["reverse_dns"] = reverse_dns(settings["sending_addresses"], settings["helo_name"])
    if settings.get("postfix"):
        report["postfix_queue"] = postfix_queue()
    if settings.get("backups"):
        backup = settings["backups"]
        report["backups"] = backups(backup["directory"], backup["unit"], backup.get("remote"))
    if settings.get("point_in_time"):
        pitr = settings["point_in_time"]
        report["point_in_time"] = point_in_time(pitr["archive_status"], pitr["units"])
    return report


def send(report: dict[str, Any], database_url: str) -> None:
    """Hand the report to the database; psql quotes it as a literal (`:'report'`), so nothing in it is SQL."""
    _run(["psql", database_url, "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1",
          f"--set=report={json.dumps(report, separators=(',', ':'))}", "--file=-"],
         input_text=f"SELECT {REPORT_FUNCTION}(:'report'::jsonb);\n")


def report_once(settings: dict[str, Any]) -> bool:
    """Collect and send one report; whether the database took it."""
    report = collect(settings)
    try:
        send(report, settings["database_url"])
    except (OSError, subprocess.SubprocessError) as exc:
        # The database is away (a restart, a failover): the next round reports, and the page shows the gap.
        print(f"the report was not recorded: {_failure(exc)['error']}", file=sys.stderr, flush=True)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Report every INTERVAL seconds, and at once on SIGUSR1 (`systemctl kill --kill-who=main -s USR1
    postyard-host-report`); with --once, report once (exit status 1 when the database did not take it)."""
    argv = sys.argv[1:] if argv is None else argv
    once = "--once" in argv
    paths = [a for a in argv if a != "--once"]
    if len(paths) != 1:
        print("usage: host-report.py [--once] SETTINGS.json", file=sys.stderr)
        return 2
    with open(paths[0], encoding="utf-8") as handle:
        settings = json.load(handle)
    if once:
        return 0 if report_once(settings) else 1
    # One long-running process rather than a timer's oneshot runs: a report is a round of this loop.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    while True:
        report_once(settings)
        signal.sigtimedwait({signal.SIGUSR1}, INTERVAL)


if __name__ == "__main__":
    sys.exit(main())
