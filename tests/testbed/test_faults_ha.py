"""Faults on the ha topology under load. While emails sent through `POST /emails/batch` at the load balancer and
submitted on 587 at both mail hosts are in flight (at least 1,000 accepted), each fault in turn: a SIGKILL of
the primary's Patroni and PostgreSQL; a power cut of the primary db host (a new primary within 30 s; powered on
again, the old primary rejoins as a replica); a power cut of one mail host; a power cut of one api host behind
the load balancer; an api host cut off from every db host.

Afterwards every email answered 200 or 250 reached the remote MX exactly once (by Message-ID), the database
shows each delivered exactly when it arrived, and the API answered no 500. A table of faults, in-flight counts,
the longest time the API's clients went unserved, lost, duplicated and recovery times is printed
(docs/testbed.md#the-fault-test)."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from app.host_layout import DKIM_DIR
from postyard.ssh import SshError
from postyard.testbed import bed as testbed
from postyard.testbed import state as testbed_state
from postyard.testbed.state import HostRecord
from roles.postgresql import DATA_DIR
from tests.testbed.appliance_support import Appliance, open_appliance, verified_domain
from tests.testbed.cluster_support import PATRONI_UNIT, Cluster
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
from tests.testbed.fault_support import Fault, Host, drop_packets, fault_table, release_packets, wait_until

MESSAGES = 1000  # accepted over the whole run, at the least
FAILOVER_WITHIN = 30.0  # from the primary's power cut until another member leads
REJOIN_WITHIN = 180.0  # from the old primary's boot until it streams as a replica
POWER_CUT = 30.0  # how long a mail or api host stays off
PARTITION = 60.0  # how long an api host stays cut off from the database


@pytest.fixture(scope="module")
def appliance(ha_testbed, tmp_path_factory, monkeypatch_module) -> Appliance:
    return open_appliance(ha_testbed, tmp_path_factory.mktemp("ha-ca"), monkeypatch_module)


@pytest.fixture(scope="module")
def cluster(appliance) -> Iterator[Cluster]:
    """The cluster, healthy before the faults; after them, every host powered on and the first db host leading
    again, as the other suites expect, whatever became of the test."""
    found = Cluster(appliance.mail)
    wait_until(found.healthy, 120, "the cluster healthy before the faults", interval=2)
    yield found
    bed = appliance.mail.bed
    for record in testbed_state.load(bed.name).platform_hosts:
        if record.nspawn_pid is None:
            testbed.power_on(bed.name, record.name, log=print)
    found.lead_from_first_member()


@contextmanager
def powered_off(host: Host) -> Iterator[float]:
    """The host's power cut (every process of it killed at once, no shutdown) for the block, then its boot;
    yields the time of the cut."""
    bed, name = host.bed.bed.name, host.record.name
    cut = time.monotonic()
    testbed.power_off(bed, name, cut=True, log=print)
    try:
        yield cut
    finally:
        testbed.power_on(bed, name, log=print)


def postmaster_pid(host: Host) -> str:
    return host.run(f"head -n 1 {DATA_DIR}/postmaster.pid 2>/dev/null || true").strip()


def answers(host: Host) -> bool:
    try:
        return host.run("runuser -u postgres -- psql -XAtc 'SELECT 1'", timeout=10).strip() == "1"
    except SshError:
        return False


def sigkill_primary(cluster: Cluster) -> Callable[[Fault], None]:
    """SIGKILL of Patroni and of the postmaster on the primary, at once: systemd starts Patroni again, which
    starts a new postmaster (etcd lists the member as running throughout, so that alone shows nothing)."""

    def action(fault: Fault) -> None:
        host = cluster.host(cluster.primary())
        patroni, postmaster = host.main_pid(PATRONI_UNIT), postmaster_pid(host)
        host.run(f"kill -KILL {patroni} {postmaster}")
        wait_until(lambda: host.active_with_new_pid(PATRONI_UNIT, patroni)
                   and postmaster_pid(host) not in ("", postmaster) and answers(host),
                   120, "a new postmaster after the SIGKILL", interval=0.5)
        fault.unit_back = wait_until(cluster.healthy, 120, "the cluster healthy after the SIGKILL", interval=0.5)

    return action


def power_cut_primary(cluster: Cluster, measured: dict[str, float]) -> Callable[[Fault], None]:
    """The primary db host loses its power: another member leads within FAILOVER_WITHIN; powered on again, the
    old primary rejoins as a replica."""

    def action(fault: Fault) -> None:
        primary = cluster.primary()
        survivors = [h for h in cluster.members if h != primary]
        with powered_off(cluster.host(primary)) as cut:
            # the old primary's keys stay in etcd until their time to live ends: until then, it is listed as leader
            wait_until(lambda: cluster.leader(survivors) in survivors, 120, "a new primary", interval=0.5)
            measured["failover"] = time.monotonic() - cut
        booted = time.monotonic()
        wait_until(lambda: cluster.streams(primary), REJOIN_WITHIN, f"{primary.fqdn} streaming as a replica",
                   interval=2)
        measured["rejoin"] = time.monotonic() - booted
        fault.unit_back = time.time()

    return action


def power_cut(host: Host) -> Callable[[Fault], None]:
    """A host loses its power for POWER_CUT seconds, then boots."""

    def action(fault: Fault) -> None:
        fault.cut_host, cut_from = host.record.fqdn, time.time()
        with powered_off(host):
            fault.cut_between = (cut_from, time.time())
            time.sleep(POWER_CUT)
        host.run("systemctl is-system-running --wait || true", timeout=300)
        fault.released = fault.unit_back = time.time()

    return action


def partition(host: Host, db_hosts: list[HostRecord]) -> Callable[[Fault], None]:
    """Every packet from the host to the db hosts dropped for PARTITION seconds (its clients hear nothing)."""
    addresses = ", ".join(sorted({h.private_address for h in db_hosts} | {h.public_address for h in db_hosts}))

    def action(fault: Fault) -> None:
        drop_packets(host, "output", f"ip daddr {{ {addresses} }}")
        try:
            time.sleep(PARTITION)
        finally:
            release_packets(host)
        fault.released = fault.unit_back = time.time()

    return action


def test_every_accepted_email_arrives_exactly_once_through_the_loss_of_any_host(ha_testbed, appliance, cluster):
    mail_bed = appliance.mail
    assert ha_testbed.api_name, "the ha topology has a load balancer"
    domain = verified_domain(appliance)
    mail_hosts = [h for h in ha_testbed.platform_hosts if "mail" in h.groups]
    api_hosts = [h for h in ha_testbed.platform_hosts if "api" in h.groups]
    for record in mail_hosts[1:]:
        wait_until(lambda r=record: domain in Host(mail_bed, r).run(f"cat {DKIM_DIR}/current/SigningTable*"),
                   30, f"the domain's key on {record.fqdn}", interval=0.5)
    context = ssl.create_default_context(cafile=str(appliance.ca_bundle))
    # a connection per request: the balancer passes TCP on, so it spreads connections, not requests
    client = httpx.Client(base_url=f"https://{ha_testbed.api_name}", timeout=30, verify=context,
                          headers={"Authorization": f"Bearer {appliance.api_key}"},
                          limits=httpx.Limits(max_keepalive_connections=0))
    ledger = Ledger()
    api = ApiLoad(ledger, client, f"Faults <load@{domain}>", domain, batch=10, pace=2.0)
    logins = smtp_logins(client, SMTP_LOGINS)
    smtp = [SmtpLoad(ledger, record.fqdn, logins[index::len(mail_hosts)], context, f"Faults <smtp@{domain}>",
                     domain, pace=1.0) for index, record in enumerate(mail_hosts)]
    run = FaultRun(mail_bed, ledger, [domain], lambda: api.post(BURST))
    measured: dict[str, float] = {}
    started = time.monotonic()
    threads = start_load(ledger, [api, *smtp])
    try:
        run.inject("SIGKILL of the primary's Patroni and PostgreSQL", sigkill_primary(cluster))
        run.inject("power cut of the primary db host", power_cut_primary(cluster, measured))
        run.inject(f"power cut of {mail_hosts[-1].name} for {POWER_CUT:.0f} s",
                   power_cut(Host(mail_bed, mail_hosts[-1])))
        run.inject(f"power cut of {api_hosts[-1].name} for {POWER_CUT:.0f} s", power_cut(Host(mail_bed, api_hosts[-1])))
        run.inject(f"{api_hosts[0].name} cut off from the database for {PARTITION:.0f} s",
                   partition(Host(mail_bed, api_hosts[0]), cluster.members))
        wait_until(lambda: len(ledger.accepted()) >= MESSAGES, 600, f"{MESSAGES} emails accepted", interval=2)
    finally:
        ledger.stop.set()
    mail_bed.db = cluster.primary()  # where settling reads the emails' states
    arrived, unsettled = settle(run, ledger, threads)
    client.close()

    table, lost, duplicated = fault_table(run.faults, ledger, arrived, run.caught(arrived))
    print(f"[faults] {sum(ledger.summary().values())} emails sent in {time.monotonic() - started:.0f} s: "
          f"{ledger.summary()}\n{table}\n[faults] failover {measured.get('failover', 0):.1f} s, the old primary "
          f"streaming {measured.get('rejoin', 0):.1f} s after its boot", flush=True)
    assert not unsettled, unsettled
    assert len(ledger.accepted()) >= MESSAGES, ledger.summary()
    assert measured["failover"] <= FAILOVER_WITHIN
    assert (lost, duplicated) == (0, 0)
    check_outcomes(run, ledger, arrived)
    assert api.statuses <= ACCEPTABLE_STATUSES, ledger.summary()
