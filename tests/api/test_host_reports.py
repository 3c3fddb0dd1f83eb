"""Hosts' status reports: what the reporter may do in the database (one function, its own row), and how the
operators' status (API and console) judges a report."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from console_pages import Page, console_owner
from test_console_operator import STATUS, _db, sign_in_operator
from test_operators import _admin

from app import host_report
from app.db import roles

API_STATUS = "/operator/status"


def _reporter_url(postgres) -> str:
    return f"postgresql://{roles.REPORTER}@127.0.0.1:{postgres.port}/postyard"


def _psql_as_reporter(postgres, sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["psql", _reporter_url(postgres), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          capture_output=True, text=True, check=False)


def _unit(name: str, active: str = "active", enabled: str = "enabled", kind: str = "simple") -> dict[str, str]:
    return {"Id": name, "Type": kind, "ActiveState": active, "SubState": "", "UnitFileState": enabled, "Result": ""}


def _report(host: str, **extra) -> dict:
    return {"host": host, "groups": ["mail"], "release": "code-1", "units": [_unit("postfix@-.service")],
            "disks": [{"path": "/", "total": 100 * 2**30, "free": 50 * 2**30}], "certificates": [], **extra}


async def _store(settings, host: str, report: dict, address: str, age: timedelta = timedelta()) -> None:
    """A report as if `address` had sent it `age` ago (the reporter's own path is tested through psql)."""
    await _db(settings, "INSERT INTO host_reports (address, host_name, report, reported_at) "
                        "VALUES (CAST(:a AS inet), :h, CAST(:r AS jsonb), now() - CAST(:age AS interval)) "
                        "ON CONFLICT (address) DO UPDATE SET host_name = EXCLUDED.host_name, report = EXCLUDED.report, "
                        "reported_at = EXCLUDED.reported_at", a=address, h=host, r=json.dumps(report), age=age)


def _host_checks(body: dict, host: str) -> dict[str, dict]:
    [found] = [h for h in body["hosts"] if h["name"] == host]
    return {check["name"]: check for check in found["checks"]}


def test_the_reporter_records_its_own_host_through_psql(postgres, settings):
    name = f"mail-{uuid.uuid4().hex[:6]}.test"
    host_report.send(_report(name), _reporter_url(postgres))
    stored = postgres.psql("SELECT host_name, report->>'release' FROM host_reports WHERE address = '127.0.0.1'",
                           database="postyard")
    assert stored.strip() == f"{name}|code-1"


def test_a_second_report_from_the_same_address_replaces_the_first_whatever_host_it_names(postgres):
    host_report.send(_report("first.test"), _reporter_url(postgres))
    host_report.send(_report("db1.forged.test"), _reporter_url(postgres))
    rows = postgres.psql("SELECT host_name FROM host_reports WHERE address = '127.0.0.1'", database="postyard")
    assert rows.split() == ["db1.forged.test"]


@pytest.mark.parametrize("sql", [
    "SELECT * FROM host_reports",
    "DELETE FROM host_reports",
    "INSERT INTO host_reports (address, host_name, report) VALUES ('10.9.9.9', 'x', '{}')",
    "SELECT count(*) FROM emails",
    "SELECT count(*) FROM users",
    "SELECT * FROM postyard_host_reports()",
])
def test_the_reporter_may_do_nothing_but_report(postgres, sql):
    result = _psql_as_reporter(postgres, sql)
    assert result.returncode != 0 and "permission denied" in result.stderr, (sql, result.stdout)


@pytest.mark.parametrize("report,message", [
    ("[1, 2]", "names the host"),
    ('{"groups": []}', "names the host"),
    ('{"host": ""}', "names the host"),
    (json.dumps({"host": "big.test", "padding": "x" * 70_000}), "at most 65536 bytes"),
])
def test_a_malformed_report_is_refused_with_a_reason(postgres, report, message):
    result = _psql_as_reporter(postgres, f"SELECT postyard_report_host('{report}'::jsonb)")
    assert result.returncode != 0 and message in result.stderr


async def test_only_an_operator_reads_the_system_status(client):
    anonymous = await client.get(API_STATUS)
    await console_owner(client)
    owner = await client.get(API_STATUS)
    assert anonymous.status_code == 401
    assert owner.status_code == 403 and "operators" in owner.text, owner.text


async def test_the_status_judges_each_hosts_report(client, settings):
    client.follow_redirects = False
    now = datetime.now(UTC)
    healthy, broken, silent = (f"{kind}-{uuid.uuid4().hex[:6]}.test" for kind in ("healthy", "broken", "silent"))
    await _store(settings, healthy, _report(
        healthy, reverse_dns=[{"address": "10.77.1.12", "expected": healthy, "ptr": healthy,
                               "forward_confirmed": True}],
        postfix_queue={"maildrop": 0, "incoming": 0, "active": 1, "deferred": 2, "hold": 0},
        certificates=[{"name": "public (ACME)", "path": "/x", "not_after": (now + timedelta(days=60)).isoformat()}],
        point_in_time={"waiting": 2, "oldest_waiting": (now - timedelta(minutes=1)).isoformat(),
                       "runs": {"postyard-pitr-full.service": {"result": "success", "exit_status": "0",
                                                               "ended": "Sun 2026-11-29 01:04:00 UTC"}}},
    ), "10.250.0.1")
    await _store(settings, broken, _report(
        broken, release="code-0",
        units=[_unit("postyard-worker.service", active="failed"), _unit("postyard-webhooks.service", "inactive"),
               _unit("postyard-backup.service", "inactive", kind="oneshot"), _unit("e2scrub.service", "inactive",
                                                                                   enabled="static"),
               {**_unit("systemd-timesyncd.service", "inactive"), "ConditionResult": "no"}],
        disks=[{"path": "/", "total": 100 * 2**30, "free": 2 * 2**30}],
        reverse_dns=[{"address": "10.77.1.13", "expected": broken, "ptr": "static.example.net",
                      "forward_confirmed": True}],
        postfix_queue={"error": "postqueue exited 69: fatal: Queue report unavailable"},
        certificates=[{"name": "internal: redis", "path": "/y", "not_after": (now + timedelta(days=3)).isoformat()}],
        backups={"count": 1, "total_bytes": 2**20, "remote": None,
                 "newest": {"name": "postyard-1.dump.age", "bytes": 2**20, "at": (now - timedelta(days=3)).isoformat()},
                 "last_run": {"result": "exit-code", "exit_status": "1", "ended": "Mon 2026-11-30 02:30:05 UTC"}},
        point_in_time={"waiting": 7, "oldest_waiting": (now - timedelta(hours=1)).isoformat(),
                       "runs": {"postyard-pitr-diff.service": {"result": "exit-code", "exit_status": "28",
                                                               "ended": "Mon 2026-11-30 01:03:00 UTC"}}},
    ), "10.250.0.2")
    await _store(settings, silent, _report(silent), "10.250.0.3", age=timedelta(minutes=10))
    await _store(settings, f"also-{healthy}", _report(f"also-{healthy}"), "10.250.0.4")
    await sign_in_operator(client, settings)

    body = (await client.get(API_STATUS)).json()
    ok, bad, gone = (_host_checks(body, name) for name in (healthy, broken, silent))

    assert {c["status"] for c in ok.values()} == {"ok"}, ok
    assert ok["Reverse DNS: 10.77.1.12"]["reason"].startswith(healthy)
    assert bad["Services"]["status"] == "error"
    assert "failed: postyard-worker.service" in bad["Services"]["reason"]
    assert "down: postyard-webhooks.service" in bad["Services"]["reason"]
    assert "backup" not in bad["Services"]["reason"] and "e2scrub" not in bad["Services"]["reason"]
    assert "timesyncd" not in bad["Services"]["reason"]
    assert bad["Code"]["status"] == "warning" and "most hosts run code-1" in bad["Code"]["reason"]
    assert bad["Disk: /"]["status"] == "error"
    assert bad["Reverse DNS: 10.77.1.13"]["status"] == "error" and "static.example.net" in \
        bad["Reverse DNS: 10.77.1.13"]["reason"]
    assert bad["Postfix queue"]["status"] == "error" and "Queue report unavailable" in bad["Postfix queue"]["reason"]
    assert bad["Certificate: internal: redis"]["status"] == "error"
    assert bad["Backups: last run"]["status"] == "error" and "exit status 1" in bad["Backups: last run"]["reason"]
    assert bad["Backups: newest copy"]["status"] == "error"
    assert bad["Backups: off-host copy"]["status"] == "warning"
    assert ok["Point-in-time recovery: WAL archive"]["reason"].startswith("2 WAL segments wait")
    assert ok["Point-in-time recovery: full backup"]["reason"].startswith("succeeded")
    archive = bad["Point-in-time recovery: WAL archive"]
    assert archive["status"] == "error" and "7 WAL segments" in archive["reason"] and "fails" in archive["reason"]
    assert bad["Point-in-time recovery: differential backup"]["status"] == "error"
    assert "exit status 28" in bad["Point-in-time recovery: differential backup"]["reason"]
    assert gone["Reporting"]["status"] == "error" and "no report for 10 minutes" in gone["Reporting"]["reason"]
    assert body["summary"]["error"] >= 10

    page = Page((await client.get(STATUS)).text)
    sections = {section.attrs["data-host"] for section in page.find("section") if "data-host" in section.attrs}
    assert {healthy, broken, silent} <= sections
    assert "down: postyard-webhooks.service" in page.text and "no report for 10 minutes" in page.text


async def test_the_cli_lists_the_reporting_hosts_and_forgets_one_taken_out_of_service(env, settings):
    gone = f"retired-{uuid.uuid4().hex[:6]}.test"
    await _store(settings, gone, _report(gone), "10.250.9.9", age=timedelta(days=2))
    listed = _admin(env, "hosts")
    forgotten = _admin(env, "forget-host", gone)
    again = _admin(env, "forget-host", gone)
    assert listed.returncode == 0 and f"{gone}  from 10.250.9.9" in listed.stdout
    assert forgotten.returncode == 0 and "1 report removed" in forgotten.stdout
    assert again.returncode == 1 and f"No host named {gone} has reported" in again.stderr
    assert gone not in _admin(env, "hosts").stdout
