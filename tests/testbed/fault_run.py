"""The run of a fault test: faults injected one after the other while the load runs, each recorded with what was
in flight; then the load stopped, the queue drained and the outcomes checked against what reached the remote
MX (tests/testbed/test_faults.py, tests/testbed/test_faults_ha.py)."""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable

import httpx

from postyard.ssh import SshError, ssh_run
from postyard.testbed.state import HostRecord
from tests.testbed.fault_load import NO_ANSWER, ApiLoad, Ledger, SmtpLoad
from tests.testbed.fault_support import Fault, arrivals, caught_by_cuts, email_rows, submitted_on, wait_until
from tests.testbed.mail_support import MailTestbed

__all__ = ["ACCEPTABLE_STATUSES", "BURST", "SMTP_LOGINS", "FaultRun", "check_outcomes", "settle", "smtp_logins",
           "start_load"]

GAP = 3.0  # seconds of load between one fault's recovery and the next fault
FLOW_TIMEOUT = 300.0  # from a fault's release until mail accepted after it arrives
DRAIN_TIMEOUT = 420.0
# What a client of the API may see: the accepted answer or "try again" (503); no answer at all while the
# API's process is killed or its host is off.
ACCEPTABLE_STATUSES = {200, 503}
BURST = 50  # emails sent in one batch right before each fault, so that each finds mail in flight
# Logins the SMTP load takes in turn: the rate policy allows each a few messages a minute on the testbed.
SMTP_LOGINS = 8


def smtp_logins(client: httpx.Client, count: int) -> list[tuple[str, str]]:
    made = [client.post("/smtp-credentials", json={"name": f"faults {n}"}).raise_for_status().json()
            for n in range(count)]
    return [(credential["username"], credential["password"]) for credential in made]


class FaultRun:
    """Faults injected one after the other while the load runs; each is recorded with what was in flight, and
    the next waits until mail accepted after it has reached the remote MX."""

    def __init__(self, bed: MailTestbed, ledger: Ledger, domains: list[str], burst: Callable[[], None]) -> None:
        self.bed, self.ledger, self.domains, self.burst = bed, ledger, domains, burst
        self.faults: list[Fault] = []

    def arrived(self) -> dict[str, list[float]]:
        return arrivals(self.bed, self.domains)

    def caught(self, arrived: dict[str, list[float]]) -> set[str]:
        """What a mail host's power cut caught as it was handed over (fault_support.caught_by_cuts)."""
        if not any(f.cut_host for f in self.faults):
            return set()
        return caught_by_cuts(self.faults, arrived, submitted_on(self.bed, self.domains))

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
        caught = run.caught(arrived)
        # Settled, and the log follower has recorded each delivery (it reads Postfix's log a moment later); a
        # delivery a power cut caught may have lost its log line, and stays `sent`.
        unsettled = [f"{email_id} {state}/{event}{' (arrived)' if message_id in arrived else ''}"
                     for message_id, (email_id, state, event) in email_rows(run.bed, run.domains).items()
                     if state in ("queued", "sending") or ((event == "delivered") != (message_id in arrived)
                                                           and not (message_id in caught and event == "sent"))]
        waiting[:] = [f"{len(accepted - set(arrived))} accepted emails not arrived", f"{len(unsettled)} unsettled",
                      *unsettled[:5]]
        return accepted <= set(arrived) and not unsettled

    started = time.monotonic()
    try:
        wait_until(drained, DRAIN_TIMEOUT, "every accepted email at the remote MX, nothing left to send", interval=5)
    except AssertionError as unsettled:
        stuck = [line.split()[0] for line in waiting[2:]]
        return run.arrived(), (f"{unsettled}: {'; '.join(waiting)}\n{mail_queues(run.bed)}\n"
                               f"{trace_emails(run.bed, stuck)}")
    print(f"[faults] drained {time.monotonic() - started:.0f} s after the load stopped", flush=True)
    return run.arrived(), ""


def mail_queues(bed: MailTestbed) -> str:
    """What each mail host's Postfix still holds, and why: the first lines of its queue listing."""
    return "\n".join(f"{host.fqdn}: {queue_listing(bed, host)}" for host in bed.hosts_in("mail"))


def trace_emails(bed: MailTestbed, email_ids: list[str]) -> str:
    """Where each email went: its mail host, queue id and events in the database, and its queue id's lines in
    that host's journal (what the log follower had to read)."""
    traces = []
    for email_id in email_ids:
        query = (f"SELECT coalesce(submitted_on, '-'), coalesce(queue_id, '-'), (SELECT string_agg(type || '@' || "
                 f"created_at::time::text, ' ' ORDER BY seq) FROM email_events WHERE email_id = e.id) "
                 f"FROM emails e WHERE id = '{email_id}'")
        try:
            psql = f"runuser -u postgres -- psql -d postyard -AtF' ' -c {shlex.quote(query)}"
            row = ssh_run(bed.target(bed.db), psql, timeout=60).split(maxsplit=2)
            submitted_on, queue_id = row[0], row[1]
            host = next((h for h in bed.hosts_in("mail") if h.fqdn == submitted_on), None)
            journal = "" if host is None or queue_id == "-" else ssh_run(
                bed.target(host), f"journalctl -o short-iso --no-pager --grep={shlex.quote(queue_id)} || true",
                timeout=60)
            traces.append(f"{email_id}: {' '.join(row)}\n{journal}")
        except (SshError, IndexError) as error:
            traces.append(f"{email_id}: not traced ({error})")
    return "\n".join(traces)


def queue_listing(bed: MailTestbed, host: HostRecord) -> str:
    try:  # the first lines and the summary; a host that does not answer must not hide the drain's failure
        return ssh_run(bed.target(host), "postqueue -p | sed -n '1,12p;$p'", timeout=60)
    except SshError as error:
        return f"not read ({error})"


def check_outcomes(run: FaultRun, ledger: Ledger, arrived: dict[str, list[float]]) -> None:
    """Accepted: exactly once. Anything else: at most once, and delivered in the database exactly when it
    arrived. What a mail host's power cut caught as it was handed over: arrived, at most twice, `delivered` or
    `sent`. No more unaccepted emails stored than were left unanswered."""
    accepted = ledger.accepted()
    rows = email_rows(run.bed, run.domains)
    caught = run.caught(arrived)
    assert set(accepted) <= set(rows), "an accepted email is not in the database"
    for message_id, (email_id, state, event) in rows.items():
        copies = len(arrived.get(message_id, []))
        if message_id in caught:
            assert copies in (1, 2) and event in ("delivered", "sent"), f"{email_id} is {state}/{event}, {copies}"
            continue
        assert copies <= 1, f"{email_id} arrived {copies} times"
        assert (event == "delivered") == (copies == 1), f"{email_id} is {state}/{event} and arrived {copies} times"
    assert set(arrived) <= set(rows), "a message arrived that the database does not know"
    unanswered = sum(a.count for a in ledger.attempts if a.answer == NO_ANSWER)
    stored_unaccepted = set(rows) - set(accepted)
    print(f"[faults] {len(stored_unaccepted)} emails stored without an accepting answer, "
          f"{unanswered} left unanswered", flush=True)
    assert len(stored_unaccepted) <= unanswered
