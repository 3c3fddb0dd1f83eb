"""The host report's probes, on this machine's real files and tools where they exist."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta

from app import host_report

SHOW = """Id=postfix@-.service
Type=forking
ActiveState=active
SubState=running
UnitFileState=enabled
Result=success

Id=postyard-backup.service
Type=oneshot
ActiveState=inactive
SubState=dead
UnitFileState=static
Result=exit-code
"""


def test_systemctl_show_of_several_units_gives_one_entry_each():
    units = host_report.parse_units(SHOW)
    assert [u["Id"] for u in units] == ["postfix@-.service", "postyard-backup.service"]
    assert units[1]["Result"] == "exit-code" and units[0]["Type"] == "forking"


def test_postqueue_json_counts_each_queue():
    lines = '{"queue_name": "deferred", "queue_id": "A"}\n{"queue_name": "deferred", "queue_id": "B"}\n' \
            '{"queue_name": "hold", "queue_id": "C"}\n'
    assert host_report.parse_postqueue(lines) == {"maildrop": 0, "incoming": 0, "active": 0, "deferred": 2, "hold": 1}
    assert host_report.parse_postqueue("")["active"] == 0


def test_a_certificate_end_date_is_read_with_openssl(tmp_path):
    key, cert = tmp_path / "k.pem", tmp_path / "internal" / "redis" / "server.crt"
    cert.parent.mkdir(parents=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "30", "-subj", "/CN=redis.test"],
                   check=True, capture_output=True)
    found = host_report.certificates({"missing": str(tmp_path / "none.pem")}, str(tmp_path / "internal/*/server.crt"))
    [entry] = found
    ends = datetime.fromisoformat(entry["not_after"])
    assert entry["name"] == "internal: redis"
    assert timedelta(days=29) < ends - datetime.now(UTC) <= timedelta(days=30)


def test_a_file_that_is_not_a_certificate_is_reported_as_unreadable(tmp_path):
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    [entry] = host_report.certificates({"public (ACME)": str(bogus)}, str(tmp_path / "none/*"))
    assert "error" in entry and "openssl exited" in entry["error"]


def test_each_file_system_is_reported_once(tmp_path):
    found = host_report.disks([str(tmp_path), str(tmp_path), "/nonexistent-path"])
    assert len(found) == 1 and 0 <= found[0]["free"] <= found[0]["total"]


def test_backups_name_the_newest_copy_and_record_a_failed_probe(tmp_path):
    for stamp, size in (("20261128T023000Z", 10), ("20261129T023000Z", 20)):
        path = tmp_path / f"postyard-{stamp}.dump.age"
        path.write_bytes(b"x" * size)
    os.utime(tmp_path / "postyard-20261128T023000Z.dump.age", (1, 1))
    (tmp_path / "notes.txt").write_text("not a backup")
    found = host_report.backups(str(tmp_path), "postyard-backup-that-does-not-exist.service", "box.example:backups")
    assert found["count"] == 2 and found["total_bytes"] == 30 and found["remote"] == "box.example:backups"
    assert found["newest"]["name"] == "postyard-20261129T023000Z.dump.age" and found["newest"]["bytes"] == 20
    assert "last_run" in found


def test_the_answers_of_host_are_read_for_ptr_and_address_lookups():
    ptr = "12.1.77.10.in-addr.arpa domain name pointer mail1.postyard.test.\n"
    forward = "mail1.postyard.test has address 10.77.1.12\nmail1.postyard.test has address 10.77.1.99\n"
    missing = "Host 13.1.77.10.in-addr.arpa. not found: 3(NXDOMAIN)\n"
    assert host_report.parse_host_answers(ptr, "domain name pointer") == ["mail1.postyard.test"]
    assert host_report.parse_host_answers(forward, "has address") == ["10.77.1.12", "10.77.1.99"]
    assert host_report.parse_host_answers(missing, "domain name pointer") == []


def test_wal_segments_waiting_for_the_archive_are_counted_with_the_oldest(tmp_path):
    status = tmp_path / "archive_status"
    status.mkdir()
    stamps = {"000000010000000000000011.ready": 1_700_000_300, "000000010000000000000010.ready": 1_700_000_000,
              "00000001000000000000000F.done": 1_600_000_000}
    for name, stamp in stamps.items():
        (status / name).touch()
        os.utime(status / name, (stamp, stamp))
    found = host_report.point_in_time(str(status), [])
    assert found["waiting"] == 2
    assert found["oldest_waiting"] == datetime.fromtimestamp(1_700_000_000, UTC).isoformat()
    assert host_report.point_in_time(str(tmp_path / "absent"), []) == {"waiting": 0, "runs": {}}
