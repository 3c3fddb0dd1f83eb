"""Faults under load. On the one-host topology, while emails sent through `POST /emails/batch` and submitted on
587 are in flight (at least 1,000 accepted) and webhooks are subscribed (one endpoint that keeps what it gets,
and for another team one that hangs and one that answers 100 MB), each fault in turn: a SIGKILL of the API,
the worker, the log follower, the SMTP intake, both OpenDKIM instances, Postfix's master, Redis and PostgreSQL;
PostgreSQL stopped for longer than the worker's lease; the signing milter stopped (SIGSTOP) for longer than the
worker's SMTP timeout; the spool, on a small filesystem of its own, full until Postfix defers; a reboot. On the
split topology, packets to the database dropped for 60 s.

Afterwards every email answered 200 or 250 reached the remote MX exactly once (by Message-ID); every other
email arrived at most once, and the database shows it delivered exactly when it arrived; the API answered no
500; each accepted email's webhooks arrived, signed. A table of faults, in-flight counts, lost, duplicated
and recovery times is printed (docs/testbed.md#the-fault-test)."""

from __future__ import annotations

import base64
import hmac
import json
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from hashlib import sha256
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.host_layout import API_SERVICE, INTAKE_SERVICE, POSTFIX_EVENTS_SERVICE, WORKER_SERVICE
from postyard.deployer import REPO
from postyard.testbed import bed as testbed
from postyard.testbed import state as testbed_state
from roles.opendkim import INSTANCES as OPENDKIM_INSTANCES
from tests.testbed.appliance_support import Appliance, open_appliance, verified_domain
from tests.testbed.fault_load import ApiLoad, Ledger, SmtpLoad
from tests.testbed.fault_run import (
    ACCEPTABLE_STATUSES,
    BURST,
    SMTP_LOGINS,
    FaultRun,
    check_outcomes,
    settle,
    smtp_logins,
    start_load,
)
from tests.testbed.fault_support import (
    POSTFIX_UNIT,
    Fault,
    Host,
    drop_database_packets,
    fault_table,
    release_packets,
    spool_fill,
    spool_free,
    spool_on_tmpfs,
    spool_restore,
    wait_until,
)

DEFAULTS = Settings(database_url="")
MESSAGES = 1000  # accepted over the whole run, at the least
POSTGRES_OUTAGE = DEFAULTS.worker_lease_seconds + 10
MILTER_STALL = DEFAULTS.smtp_submission_timeout + 10
PACKET_DROP = 60.0
SPOOL_FULL_HOLD = 20.0
POSTGRES_UNIT = "postgresql@15-main.service"
REDIS_UNIT = "redis-server.service"
SIGNING_MILTER = OPENDKIM_INSTANCES[0].unit
GOOD_PORT, HANGING_PORT, HUGE_PORT = 8101, 8102, 8103
EVENTS = ["email.sent", "email.delivered"]


def unit(service: str) -> str:
    return f"{service}.service"


# -- the customers: team A sends and keeps its webhooks; team B sends too, and its endpoints are hostile


@pytest.fixture(scope="module")
def appliance(single_testbed, tmp_path_factory, monkeypatch_module) -> Appliance:
    return open_appliance(single_testbed, tmp_path_factory.mktemp("ca"), monkeypatch_module)


def outside_process(bed: testbed_state.TestbedState, module: str, *argv: str) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", bed.outside_netns, sys.executable, "-m", module, *argv], cwd=REPO)


@pytest.fixture(scope="module")
def endpoints(single_testbed, tmp_path_factory) -> Iterator[dict[str, Path]]:
    """The webhook endpoints in the outside namespace: what the good one got, what the hostile ones counted."""
    directory = tmp_path_factory.mktemp("hooks")
    paths = {"good": directory / "deliveries.jsonl", "hostile": directory / "hostile.txt"}
    for path in paths.values():
        path.touch()
    address = single_testbed.outside_address
    processes = [
        outside_process(single_testbed, "tests.testbed.webhook_receiver", address, str(GOOD_PORT), str(paths["good"])),
        outside_process(single_testbed, "tests.testbed.fault_endpoints", address, str(HANGING_PORT), str(HUGE_PORT),
                        str(paths["hostile"])),
    ]
    yield paths
    for process in processes:
        process.terminate()
        process.wait(10)


def client_for(appliance: Appliance, key: str) -> httpx.Client:
    return httpx.Client(base_url=appliance.url, headers={"Authorization": f"Bearer {key}"}, timeout=30,
                        verify=ssl.create_default_context(cafile=str(appliance.ca_bundle)))


def subscribe(client: httpx.Client, endpoint: str) -> dict:
    return client.post("/webhooks", json={"endpoint": endpoint, "events": EVENTS}).raise_for_status().json()


def signed_by(secret: str, delivery: dict) -> bool:
    """The Standard Webhooks signature (HMAC-SHA256 of id.timestamp.body), checked without the library's
    five-minute window: deliveries are read back only once the run is over."""
    headers = {k.lower(): v for k, v in delivery["headers"].items()}
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{delivery['body']}".encode()
    expected = base64.b64encode(hmac.new(key, signed, sha256).digest()).decode()
    return any(hmac.compare_digest(f"v1,{expected}", given) for given in headers["webhook-signature"].split())


# -- the run ----------------------------------------------------------------------------------------


def sigkill(host: Host, *units: str) -> Callable[[Fault], None]:
    def action(fault: Fault) -> None:
        fault.unit_back = host.sigkill(units)

    return action


def outage(host: Host, unit_name: str, seconds: float) -> Callable[[Fault], None]:
    def action(fault: Fault) -> None:
        host.run(f"systemctl stop {unit_name}")
        time.sleep(seconds)
        host.run(f"systemctl start {unit_name}", timeout=120)
        fault.released = time.time()
        fault.unit_back = wait_until(lambda: host.is_active(unit_name), 60, f"{unit_name} active")

    return action


def milter_stall(host: Host, seconds: float) -> Callable[[Fault], None]:
    def action(fault: Fault) -> None:
        pid = host.main_pid(SIGNING_MILTER)
        host.run(f"kill -STOP {pid}")
        try:
            time.sleep(seconds)
        finally:
            host.run(f"kill -CONT {pid}")
        fault.released = fault.unit_back = time.time()

    return action


def spool_full(host: Host) -> Callable[[Fault], None]:
    def action(fault: Fault) -> None:
        spool_fill(host)

        def deferring() -> bool:
            log = host.run(f"journalctl -q --no-pager --since=@{int(fault.injected)} -u {POSTFIX_UNIT} "
                           f"-g 'Insufficient system storage' || true")
            return bool(log.strip())

        wait_until(deferring, 60, "Postfix deferring for want of space", interval=2)
        time.sleep(SPOOL_FULL_HOLD)
        spool_free(host)
        fault.released = fault.unit_back = time.time()

    return action


def reboot(bed: testbed_state.TestbedState, host: Host) -> Callable[[Fault], None]:
    def action(fault: Fault) -> None:
        testbed.reboot(bed.name, "node1", log=lambda _: None)
        host.run("systemctl is-system-running --wait || true", timeout=300)
        fault.unit_back = fault.flow_from = time.time()

    return action


def check_webhooks(log: Path, secret: str, email_ids: set[str]) -> None:
    """Each accepted email's email.sent and email.delivered reached the endpoint, signed."""

    def received() -> dict[str, set[str]]:
        seen: dict[str, set[str]] = {}
        for line in log.read_text().splitlines():
            delivery = json.loads(line)
            assert signed_by(secret, delivery), f"a webhook delivery is not signed: {delivery['headers']}"
            event = json.loads(delivery["body"])
            seen.setdefault(event["data"]["email_id"], set()).add(event["type"])
        return seen

    def complete() -> bool:
        seen = received()
        return all(set(EVENTS) <= seen.get(email_id, set()) for email_id in email_ids)

    try:
        wait_until(complete, 120, "every accepted email's webhooks", interval=5)
    finally:
        seen = received()
        missing = [i for i in email_ids if not set(EVENTS) <= seen.get(i, set())]
        print(f"[faults] webhooks: {len(seen)} emails with events, {len(missing)} without both", flush=True)


def test_every_accepted_email_arrives_exactly_once_through_every_fault(single_testbed, appliance, endpoints):
    mail_bed = appliance.mail
    domain = verified_domain(appliance)
    team_b, access_b = mail_bed.open_team("faults-b")
    domain_b = mail_bed.verified_domain(access_b, prefix="f", key_timeout=10)
    client_a, client_b = client_for(appliance, appliance.api_key), client_for(appliance, team_b.api_key)
    address = single_testbed.outside_address
    good = subscribe(client_a, f"http://{address}:{GOOD_PORT}/hook")
    subscribe(client_b, f"http://{address}:{HANGING_PORT}/hook")
    subscribe(client_b, f"http://{address}:{HUGE_PORT}/hook")

    ledger = Ledger()
    api_a = ApiLoad(ledger, client_a, f"Faults <load@{domain}>", domain, batch=10, pace=3.0)
    api_b = ApiLoad(ledger, client_b, f"Faults <load@{domain_b}>", domain_b, batch=2, pace=6.0)
    smtp_context = ssl.create_default_context(cafile=str(appliance.ca_bundle))
    smtp = SmtpLoad(ledger, mail_bed.mail.fqdn, smtp_logins(client_a, SMTP_LOGINS), smtp_context,
                    f"Faults <smtp@{domain}>", domain, pace=0.7)
    run = FaultRun(mail_bed, ledger, [domain, domain_b], lambda: api_a.post(BURST))
    mail = Host(mail_bed, mail_bed.mail)
    started = time.monotonic()
    threads = start_load(ledger, [api_a, api_b, smtp])
    try:
        # The database faults and the reboot first: an email the worker was handing over when one struck waits
        # for its lease and the outcome grace (120 s each), which then end while the other faults run rather
        # than after them.
        run.inject("SIGKILL of PostgreSQL", sigkill(mail, POSTGRES_UNIT))
        run.inject(f"PostgreSQL stopped for {POSTGRES_OUTAGE:.0f} s (> the lease)",
                   outage(mail, POSTGRES_UNIT, POSTGRES_OUTAGE))
        run.inject("reboot of the host", reboot(single_testbed, mail))
        run.inject("SIGKILL of the API", sigkill(mail, unit(API_SERVICE)), channels=("api",))
        run.inject("SIGKILL of the worker", sigkill(mail, unit(WORKER_SERVICE)))
        run.inject("SIGKILL of the log follower", sigkill(mail, unit(POSTFIX_EVENTS_SERVICE)))
        run.inject("SIGKILL of the SMTP intake", sigkill(mail, unit(INTAKE_SERVICE)), channels=("smtp",))
        run.inject("SIGKILL of both OpenDKIM instances", sigkill(mail, *(i.unit for i in OPENDKIM_INSTANCES)))
        run.inject("SIGKILL of Postfix's master", sigkill(mail, POSTFIX_UNIT))
        run.inject("SIGKILL of Redis", sigkill(mail, REDIS_UNIT))
        run.inject(f"the signing milter stopped for {MILTER_STALL:.0f} s (SIGSTOP)", milter_stall(mail, MILTER_STALL))
        spool_on_tmpfs(mail)
        run.inject("the spool full until Postfix defers, then freed", spool_full(mail))
        spool_restore(mail, unit(WORKER_SERVICE))
    finally:
        ledger.stop.set()
        spool_restore(mail, unit(WORKER_SERVICE))
    arrived, unsettled = settle(run, ledger, threads)
    client_a.close()
    client_b.close()

    table, lost, duplicated = fault_table(run.faults, ledger, arrived)
    print(f"[faults] {sum(ledger.summary().values())} emails sent in {time.monotonic() - started:.0f} s: "
          f"{ledger.summary()}\n{table}", flush=True)
    assert not unsettled, unsettled
    assert len(ledger.accepted()) >= MESSAGES, ledger.summary()
    assert (lost, duplicated) == (0, 0)
    check_outcomes(run, ledger, arrived)
    assert (api_a.statuses | api_b.statuses) <= ACCEPTABLE_STATUSES, ledger.summary()
    team_a_ids = {a.email_id for m, a in ledger.accepted().items() if m.endswith(f"@{domain}>") and a.email_id}
    check_webhooks(endpoints["good"], good["signing_secret"], team_a_ids)
    hostile = endpoints["hostile"].read_text().split()
    assert {"hanging", "huge"} <= set(hostile), "the hostile endpoints were never called"


# -- the split topology: the database's packets dropped ------------------------------------------------


@pytest.fixture(scope="module")
def split_appliance(split_testbed, tmp_path_factory, monkeypatch_module) -> Appliance:
    return open_appliance(split_testbed, tmp_path_factory.mktemp("split-ca"), monkeypatch_module)


def test_every_accepted_email_arrives_exactly_once_when_the_database_drops_packets(split_testbed, split_appliance):
    mail_bed = split_appliance.mail
    domain = verified_domain(split_appliance)
    client = client_for(split_appliance, split_appliance.api_key)
    ledger = Ledger()
    api = ApiLoad(ledger, client, f"Faults <load@{domain}>", domain, batch=10, pace=2.0)
    smtp_context = ssl.create_default_context(cafile=str(split_appliance.ca_bundle))
    smtp = SmtpLoad(ledger, mail_bed.mail.fqdn, smtp_logins(client, SMTP_LOGINS), smtp_context,
                    f"Faults <smtp@{domain}>", domain, pace=1.0)
    run = FaultRun(mail_bed, ledger, [domain], lambda: api.post(BURST))
    db = Host(mail_bed, mail_bed.db)

    def drop(fault: Fault) -> None:
        drop_database_packets(db)
        try:
            time.sleep(PACKET_DROP)
        finally:
            release_packets(db)
        fault.released = fault.unit_back = time.time()

    started = time.monotonic()
    threads = start_load(ledger, [api, smtp])
    try:
        time.sleep(20)
        run.inject(f"packets to the database dropped for {PACKET_DROP:.0f} s ({split_testbed.topology})", drop)
        time.sleep(10)
    finally:
        ledger.stop.set()
        release_packets(db)
    arrived, unsettled = settle(run, ledger, threads)
    client.close()
    table, lost, duplicated = fault_table(run.faults, ledger, arrived)
    print(f"[faults] {sum(ledger.summary().values())} emails sent in {time.monotonic() - started:.0f} s: "
          f"{ledger.summary()}\n{table}", flush=True)
    assert not unsettled, unsettled
    assert (lost, duplicated) == (0, 0)
    check_outcomes(run, ledger, arrived)
    assert api.statuses <= ACCEPTABLE_STATUSES, ledger.summary()

