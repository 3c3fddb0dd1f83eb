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
import threading
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
from tests.testbed.fault_load import NO_ANSWER, ApiLoad, Ledger, SmtpLoad
from tests.testbed.fault_support import (
    POSTFIX_UNIT,
    Fault,
    Host,
    arrivals,
    drop_database_packets,
    email_rows,
    fault_table,
    release_database,
    spool_fill,
    spool_free,
    spool_on_tmpfs,
    spool_restore,
    wait_until,
)
from tests.testbed.mail_support import MailTestbed

DEFAULTS = Settings(database_url="")
MESSAGES = 1000  # accepted over the whole run, at the least
GAP = 3.0  # seconds of load between one fault's recovery and the next fault
POSTGRES_OUTAGE = DEFAULTS.worker_lease_seconds + 10
MILTER_STALL = DEFAULTS.smtp_submission_timeout + 10
PACKET_DROP = 60.0
SPOOL_FULL_HOLD = 20.0
FLOW_TIMEOUT = 300.0  # from a fault's release until mail accepted after it arrives
DRAIN_TIMEOUT = 420.0
# What a client of the API may see: the accepted answer or "try again" (503); no answer at all while the
# API's process is killed or the host reboots.
ACCEPTABLE_STATUSES = {200, 503}
POSTGRES_UNIT = "postgresql@15-main.service"
REDIS_UNIT = "redis-server.service"
SIGNING_MILTER = OPENDKIM_INSTANCES[0].unit
GOOD_PORT, HANGING_PORT, HUGE_PORT = 8101, 8102, 8103
BURST = 50  # emails sent in one batch right before each fault, so that each finds mail in flight
# Logins the SMTP load takes in turn: the rate policy allows each a few messages a minute on the testbed.
SMTP_LOGINS = 8
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


def smtp_logins(client: httpx.Client, count: int) -> list[tuple[str, str]]:
    made = [client.post("/smtp-credentials", json={"name": f"faults {n}"}).raise_for_status().json()
            for n in range(count)]
    return [(credential["username"], credential["password"]) for credential in made]


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


class FaultRun:
    """Faults injected one after the other while the load runs; each is recorded with what was in flight, and
    the next waits until mail accepted after it has reached the remote MX."""

    def __init__(self, bed: MailTestbed, ledger: Ledger, domains: list[str], burst: Callable[[], None]) -> None:
        self.bed, self.ledger, self.domains, self.burst = bed, ledger, domains, burst
        self.faults: list[Fault] = []

    def arrived(self) -> dict[str, list[float]]:
        return arrivals(self.bed, self.domains)

    def inject(self, name: str, action: Callable[[Fault], None], channels: tuple[str, ...] = ("api", "smtp")) -> None:
        time.sleep(GAP)
        self.burst()
        in_flight = set(self.ledger.accepted()) - set(self.arrived())
        fault = Fault(name, time.time(), in_flight, channels=channels)
        fault.released = fault.injected
        print(f"[faults] {name}: {len(self.ledger.accepted())} accepted, {len(in_flight)} in flight", flush=True)
        action(fault)
        self.faults.append(fault)
        wait_until(lambda: self._flowing(fault), FLOW_TIMEOUT, f"mail flowing again after the {name}", interval=2)
        print(f"[faults] {name}: mail flows {time.time() - fault.released:.1f} s after "
              f"{'the release' if fault.released > fault.injected else 'the fault'}", flush=True)

    def _flowing(self, fault: Fault) -> bool:
        arrived = self.arrived()
        return any(m in arrived for m, a in self.ledger.accepted().items()
                   if a.at >= max(fault.released, fault.flow_from) and a.channel in fault.channels)


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


def start_load(ledger: Ledger, loads: list[ApiLoad | SmtpLoad]) -> list[threading.Thread]:
    threads = [threading.Thread(target=load.run, daemon=True) for load in loads]
    for thread in threads:
        thread.start()
    return threads


def settle(run: FaultRun, ledger: Ledger, threads: list[threading.Thread]) -> tuple[dict[str, list[float]], str]:
    """Stop the load and wait until every accepted email arrived and nothing of the domains is left unsent;
    what arrived, then, and what did not settle (empty when all did)."""
    ledger.stop.set()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "the load did not stop"
    accepted = set(ledger.accepted())

    waiting: list[str] = []

    def drained() -> bool:
        arrived = run.arrived()
        # Settled, and the log follower has recorded each delivery (it reads Postfix's log a moment later).
        unsettled = [f"{email_id} {state}/{event}{' (arrived)' if message_id in arrived else ''}"
                     for message_id, (email_id, state, event) in email_rows(run.bed, run.domains).items()
                     if state in ("queued", "sending") or (event == "delivered") != (message_id in arrived)]
        waiting[:] = [f"{len(accepted - set(arrived))} accepted emails not arrived", f"{len(unsettled)} unsettled",
                      *unsettled[:5]]
        return accepted <= set(arrived) and not unsettled

    started = time.monotonic()
    try:
        wait_until(drained, DRAIN_TIMEOUT, "every accepted email at the remote MX, nothing left to send", interval=5)
    except AssertionError as unsettled:
        return run.arrived(), f"{unsettled}: {'; '.join(waiting)}"
    print(f"[faults] drained {time.monotonic() - started:.0f} s after the load stopped", flush=True)
    return run.arrived(), ""


def check_outcomes(run: FaultRun, ledger: Ledger, arrived: dict[str, list[float]]) -> None:
    """Accepted: exactly once. Anything else: at most once, and delivered in the database exactly when it
    arrived. No more unaccepted emails stored than were left unanswered."""
    accepted = ledger.accepted()
    rows = email_rows(run.bed, run.domains)
    assert set(accepted) <= set(rows), "an accepted email is not in the database"
    for message_id, (email_id, state, event) in rows.items():
        copies = len(arrived.get(message_id, []))
        assert copies <= 1, f"{email_id} arrived {copies} times"
        assert (event == "delivered") == (copies == 1), f"{email_id} is {state}/{event} and arrived {copies} times"
    assert set(arrived) <= set(rows), "a message arrived that the database does not know"
    unanswered = sum(a.count for a in ledger.attempts if a.answer == NO_ANSWER)
    stored_unaccepted = set(rows) - set(accepted)
    print(f"[faults] {len(stored_unaccepted)} emails stored without an accepting answer, "
          f"{unanswered} left unanswered", flush=True)
    assert len(stored_unaccepted) <= unanswered


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
            release_database(db)
        fault.released = fault.unit_back = time.time()

    started = time.monotonic()
    threads = start_load(ledger, [api, smtp])
    try:
        time.sleep(20)
        run.inject(f"packets to the database dropped for {PACKET_DROP:.0f} s (split)", drop)
        time.sleep(10)
    finally:
        ledger.stop.set()
        release_database(db)
    arrived, unsettled = settle(run, ledger, threads)
    client.close()
    table, lost, duplicated = fault_table(run.faults, ledger, arrived)
    print(f"[faults] {sum(ledger.summary().values())} emails sent in {time.monotonic() - started:.0f} s: "
          f"{ledger.summary()}\n{table}", flush=True)
    assert not unsettled, unsettled
    assert (lost, duplicated) == (0, 0)
    check_outcomes(run, ledger, arrived)
    assert api.statuses <= ACCEPTABLE_STATUSES, ledger.summary()

