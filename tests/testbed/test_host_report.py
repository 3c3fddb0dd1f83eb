"""Every host reports its own status, and the operators' status (API and console) shows it: a stopped service,
a wrong PTR record and a backup run each show on the deployed hosts, and a host cannot write another's report."""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from postyard.appliance_client import name_resolver
from postyard.ssh import ssh_run
from postyard.testbed import internet, state
from postyard.testbed.state import HostRecord
from postyard.topology import GROUPS, is_clustered
from tests.testbed.mail_support import MailTestbed

REPORT_NOW = ["systemctl", "kill", "--kill-who=main", "--signal=SIGUSR1", "postyard-host-report.service"]


def _report_rows(bed: MailTestbed) -> list[dict[str, Any]]:
    """Each stored report: {name, address, report, age in seconds}, as the database holds them (read as the
    superuser on the db host)."""
    query = ("SELECT json_agg(json_build_object('name', host_name, 'address', host(address), 'report', report, "
             "'age', extract(epoch FROM now() - reported_at), 'at', extract(epoch FROM reported_at))) "
             "FROM host_reports")
    out = ssh_run(bed.target(bed.db), ["runuser", "-u", "postgres", "--", "psql", "-d", "postyard", "-XAtc", query])
    return json.loads(out.strip() or "null") or []


def _reports(bed: MailTestbed) -> dict[str, dict[str, Any]]:
    """{host name: its report's row}."""
    return {row["name"]: row for row in _report_rows(bed)}


def _report_now(bed: MailTestbed, host: HostRecord) -> None:
    """Make the host report at once (SIGUSR1), and wait until the database holds that report."""
    address = _report_address(bed, host)
    before = max((r["at"] for r in _report_rows(bed) if r["address"] == address), default=0)
    ssh_run(bed.target(host), REPORT_NOW)
    _wait(lambda: any(r["at"] > before for r in _report_rows(bed) if r["address"] == address),
          f"a new report from {host.fqdn}", timeout=60)


def _wait(check, what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:.0f} s")
        time.sleep(2)


@pytest.fixture(scope="module")
def bed(each_testbed: state.TestbedState) -> MailTestbed:
    return MailTestbed(each_testbed)


@pytest.fixture(scope="module")
def operator_api(bed: MailTestbed, monkeypatch_module) -> Iterator[httpx.Client]:
    """The deployed API over HTTPS from this machine, signed in as a new operator."""
    monkeypatch_module.setattr(socket, "getaddrinfo", name_resolver(bed.host_names()))
    email = f"status-{uuid.uuid4().hex[:8]}@example.test"
    printed = bed.on_mail_host(["postyard-api", "admin", "create-operator", email], timeout=120)
    password = next(line.split(": ", 1)[1] for line in printed.splitlines() if line.startswith("operator password"))
    with httpx.Client(base_url=bed.api_url, timeout=30,
                      verify=ssl.create_default_context(cadata=bed.acme_root_pem())) as client:
        client.post("/auth/login", json={"email": email, "password": password}).raise_for_status()
        yield client


def test_a_stranger_gets_no_system_status(bed, operator_api):
    """Without an operator's session the deployed API answers 401 and shows no host."""
    with httpx.Client(base_url=bed.api_url, timeout=30,
                      verify=ssl.create_default_context(cadata=bed.acme_root_pem())) as stranger:
        refused = stranger.get("/operator/status")
    assert refused.status_code == 401 and bed.db.fqdn not in refused.text


def _host_checks(client: httpx.Client, host: HostRecord) -> dict[str, dict[str, str]]:
    body = client.get("/operator/status").raise_for_status().json()
    [found] = [h for h in body["hosts"] if h["name"] == host.fqdn]
    return {check["name"]: check for check in found["checks"]}


def _clustered(bed: MailTestbed) -> bool:
    return is_clustered(sum("db" in h.groups for h in bed.bed.platform_hosts))


def _report_address(bed: MailTestbed, host: HostRecord) -> str:
    """Where a host's report comes from: the db host's own loopback, else its private address. On a clustered
    database every host, the db hosts too, reaches the primary through its router, from its private address."""
    if host.private_address is None or ("db" in host.groups and not _clustered(bed)):
        return "127.0.0.1"
    return host.private_address


def test_every_host_reports_from_its_own_address_within_a_minute(bed):
    # every host but the load balancer's, which holds no credential of the database (postyard/topology.py)
    hosts = [h for h in bed.bed.platform_hosts if set(h.groups) & set(GROUPS)]
    found = _wait(lambda: (r := _reports(bed)) and all(h.fqdn in r and r[h.fqdn]["age"] < 90 for h in hosts) and r,
                  "every host's report")
    for host in hosts:
        report = found[host.fqdn]
        assert report["address"] == _report_address(bed, host), (host.fqdn, report["address"])
        assert report["report"]["groups"] == [g for g in ("mail", "db", "cache", "api") if g in host.groups]
        assert isinstance(report["report"]["units"], list) and report["report"]["disks"], report["report"]
    assert len({r["report"]["release"] for r in found.values()}) == 1


def test_the_mail_hosts_ptr_names_its_helo_name_and_a_wrong_one_shows(bed, operator_api):
    mail = bed.mail
    ok = _host_checks(operator_api, mail)[f"Reverse DNS: {mail.public_address}"]
    assert ok["status"] == "ok" and ok["reason"].startswith(mail.fqdn), ok
    pointer = ipaddress.ip_address(mail.public_address).reverse_pointer + "."
    zone = internet.reverse_zone(bed.dns)
    secret = internet.tsig_secret(bed.store)
    internet.update(bed.dns, secret, pointer, "PTR", ["static.203-0-113-9.example.net."], zone=zone)
    try:
        _report_now(bed, mail)
        wrong = _host_checks(operator_api, mail)[f"Reverse DNS: {mail.public_address}"]
    finally:
        internet.update(bed.dns, secret, pointer, "PTR", [f"{mail.fqdn}."], zone=zone)
        _report_now(bed, mail)
    assert wrong["status"] == "error" and "static.203-0-113-9.example.net" in wrong["reason"], wrong


def test_a_stopped_service_shows_as_down_until_it_runs_again(bed, operator_api):
    mail = bed.target(bed.mail)
    ssh_run(mail, ["systemctl", "stop", "postyard-webhooks.service"])
    try:
        _report_now(bed, bed.mail)
        down = _host_checks(operator_api, bed.mail)["Services"]
        page = operator_api.get("/console/operator/status")
    finally:
        ssh_run(mail, ["systemctl", "start", "postyard-webhooks.service"])
    _report_now(bed, bed.mail)
    up = _host_checks(operator_api, bed.mail)["Services"]
    assert down["status"] == "error" and "down: postyard-webhooks.service" in down["reason"], down
    assert page.status_code == 200 and "down: postyard-webhooks.service" in page.text
    assert up["status"] == "ok", up


def test_backup_runs_and_wal_archiving_show_with_where_backups_are_kept(bed, operator_api):
    db = bed.target(bed.db)
    # a clustered database keeps its pgBackRest repository, and runs its backups, on the cache host
    repository = next(h for h in bed.bed.platform_hosts if "cache" in h.groups) if _clustered(bed) else bed.db
    ssh_run(db, ["systemctl", "start", "postyard-backup.service"], timeout=300)
    ssh_run(bed.target(repository), ["systemctl", "start", "postyard-pitr-diff.service"], timeout=300)
    _report_now(bed, bed.db)
    checks = _host_checks(operator_api, bed.db)
    if repository is not bed.db:
        _report_now(bed, repository)
    runs = _host_checks(operator_api, repository)
    assert checks["Point-in-time recovery: WAL archive"]["status"] == "ok", checks
    found = runs["Point-in-time recovery: differential backup"]
    assert found["status"] == "ok", found
    assert checks["Backups: last run"]["status"] == "ok", checks["Backups: last run"]
    assert checks["Backups: newest copy"]["status"] == "ok" and "MiB" in checks["Backups: newest copy"]["reason"]
    assert checks["Backups: off-host copy"]["status"] == "warning"  # the testbed sets no backup_remote
    for name, check in checks.items():
        if name.startswith("Certificate:") or name.startswith("Disk:"):
            assert check["status"] == "ok", (name, check)


def test_the_reporter_writes_only_its_own_hosts_report(bed):
    """From another host, with that host's reporter credential: a report naming the db host lands on the sender's
    own address (so the status page shows it under that address), and the reports cannot be read."""
    sender = next((h for h in bed.bed.platform_hosts if "cache" in h.groups and "db" not in h.groups), None)
    if sender is None:
        pytest.skip("the cache host is the db host here: the split topology tests this")
    run = ["bash", "-c", "url=$(python3 -c \"import json; print(json.load(open('/etc/postyard/host-report.json'))"
           "['database_url'])\"); PGSSLROOTCERT=/etc/postyard/tls/internal-ca.crt "
           "psql \"$url\" -XAt -v ON_ERROR_STOP=1 -c \"$0\" 2>&1 || true"]
    forged = ssh_run(bed.target(sender), [*run, "SELECT postyard_report_host(json_build_object('host', "
                                                 f"'{bed.db.fqdn}', 'release', 'forged')::jsonb)"])
    read = ssh_run(bed.target(sender), [*run, "SELECT count(*) FROM host_reports"])
    rows = {row["address"]: row for row in _report_rows(bed)}
    _report_now(bed, sender)  # its own report again
    assert "ERROR" not in forged, forged
    own = rows[_report_address(bed, bed.db)]
    assert own["name"] == bed.db.fqdn and own["report"]["release"] != "forged"
    assert rows[sender.private_address]["report"]["release"] == "forged"
    assert "permission denied" in read, read
