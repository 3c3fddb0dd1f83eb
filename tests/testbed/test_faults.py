"""Faults under load on the one-host topology: while about 1,000 messages sent through the API are in
flight, the outbox worker is SIGKILLed, PostgreSQL restarts, Postfix restarts and the host reboots.
Afterwards every message the API accepted has reached the remote MX exactly once (counted by
Message-ID) and the API never answered 500."""

from __future__ import annotations

import json
import re
import shlex
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser

import httpx
import pytest

from postyard.testbed import bed as testbed
from postyard.testbed import internet
from postyard.testbed import state as testbed_state
from tests.testbed.appliance_support import Appliance, open_appliance, verified_domain
from tests.testbed.mail_support import MailTestbed

MESSAGES = 1000
BATCH = 100
SEND_PACE = 1.0  # seconds between batches, so that the load spans the faults
SEND_DEADLINE = 420.0
# Recovery is bounded by the worker's lease (120 s) and the submission retry backoff (30 s, 60 s, ...).
DRAIN_TIMEOUT = 600.0
# What a client may see while the host reboots or PostgreSQL restarts: the accepted answer, "try again"
# (503), or no answer at all (a connection error).
ACCEPTABLE_STATUSES = {"200", "503"}


@pytest.fixture(scope="module")
def appliance(single_testbed: testbed_state.TestbedState, tmp_path_factory, monkeypatch_module) -> Appliance:
    return open_appliance(single_testbed, tmp_path_factory.mktemp("ca"), monkeypatch_module)


@pytest.fixture(scope="module")
def domain(appliance: Appliance) -> str:
    return verified_domain(appliance)


@dataclass
class Load:
    """Batches POSTed one after the other from a thread, every answer counted; the ids of the emails of
    batches answered 200 are the accepted ones."""

    client: httpx.Client
    sender: str
    answers: Counter[str] = field(default_factory=Counter)
    accepted: list[str] = field(default_factory=list)
    posted: int = 0

    def run(self) -> None:
        deadline = time.monotonic() + SEND_DEADLINE
        while len(self.accepted) < MESSAGES and time.monotonic() < deadline:
            self._post()
            time.sleep(SEND_PACE)

    def _post(self) -> None:
        batch = [{"from": self.sender, "to": [f"inbox@{internet.MX_DOMAIN}"],
                  "subject": f"fault load {self.posted + n}", "text": "A message sent while things break."}
                 for n in range(BATCH)]
        self.posted += BATCH
        try:
            response = self.client.post("/emails/batch", json=batch)
        except httpx.TransportError as error:
            self.answers[f"no answer: {type(error).__name__}"] += 1
            return
        self.answers[str(response.status_code)] += 1
        if response.status_code == 200:
            self.accepted.extend(item["id"] for item in response.json()["data"])


def email_states(mail_bed: MailTestbed, domain: str) -> dict[str, tuple[str, str]]:
    """Every email from the domain: id -> (state, last_event), read as the database superuser."""
    query = f"SELECT id, state, last_event FROM emails WHERE message_id LIKE '%@{domain}>'"
    rows = mail_bed.on_mail_host(f"runuser -u postgres -- psql -d postyard -AtF' ' -c {shlex.quote(query)}")
    return {email_id: (state, event) for email_id, state, event in (line.split() for line in rows.splitlines())}


def queued(mail_bed: MailTestbed, domain: str) -> int:
    """Messages of the domain still in Postfix's queue (their VERP sender is on its return-path domain);
    other tests' mail may wait there too."""
    listing = mail_bed.on_mail_host("postqueue -j").splitlines()
    return sum(json.loads(line)["sender"].endswith(f".{domain}") for line in listing if line.strip())


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {timeout:.0f} s"
        time.sleep(interval)


def arrivals(mail_bed: MailTestbed, domain: str) -> Counter[str]:
    """How often each email of the domain reached the remote MX, by the id in its Message-ID."""
    pattern = re.compile(rf"<([0-9a-f-]{{36}})@{re.escape(domain)}>")
    parser = BytesHeaderParser()
    counts: Counter[str] = Counter()
    for raw in mail_bed.received_messages():
        if match := pattern.fullmatch(str(parser.parsebytes(raw)["Message-ID"]).strip()):
            counts[match.group(1)] += 1
    return counts


class Faults:
    """The faults, injected on the one host while the load runs, each once enough messages are accepted."""

    def __init__(self, bed: testbed_state.TestbedState, mail_bed: MailTestbed, domain: str, load: Load) -> None:
        self.bed, self.mail_bed, self.domain, self.load = bed, mail_bed, domain, load

    def inject(self, after_accepted: int, name: str, action: Callable[[], None]) -> None:
        wait_until(lambda: len(self.load.accepted) >= after_accepted, SEND_DEADLINE,
                   f"{after_accepted} accepted messages before the {name} ({dict(self.load.answers)})")
        pending = sum(event != "delivered" for _, event in email_states(self.mail_bed, self.domain).values())
        print(f"[faults] {name}: {len(self.load.accepted)} accepted, {pending} not yet delivered", flush=True)
        action()

    def systemctl(self, *argv: str) -> Callable[[], None]:
        return lambda: self.mail_bed.on_mail_host(shlex.join(["systemctl", *argv]))

    def kill_worker(self) -> None:
        # Only the main process: `systemctl kill` also signals the unit's other processes, and fails in the
        # container when one of them cannot be signalled.
        self.mail_bed.on_mail_host("kill -KILL $(systemctl show -P MainPID postyard-worker)")

    def reboot(self) -> None:
        testbed.reboot(self.bed.name, "node1", log=lambda _: None)
        self.mail_bed.on_mail_host("systemctl is-system-running --wait || true", timeout=300)


def test_every_accepted_message_arrives_exactly_once_through_faults(single_testbed, appliance, domain):
    mail_bed = appliance.mail
    client = httpx.Client(base_url=appliance.url, headers={"Authorization": f"Bearer {appliance.api_key}"},
                          verify=ssl.create_default_context(cafile=str(appliance.ca_bundle)), timeout=60)
    load = Load(client, f"Faults <load@{domain}>")
    sender = threading.Thread(target=load.run, daemon=True)
    started = time.monotonic()
    sender.start()

    faults = Faults(single_testbed, mail_bed, domain, load)
    faults.inject(200, "SIGKILL of the outbox worker", faults.kill_worker)
    faults.inject(400, "restart of PostgreSQL", faults.systemctl("restart", "postgresql@15-main"))
    faults.inject(600, "restart of Postfix", faults.systemctl("restart", "postfix@-"))
    faults.inject(800, "reboot of the host", faults.reboot)
    sender.join(SEND_DEADLINE)
    client.close()
    assert not sender.is_alive(), "the load did not finish"
    accepted = set(load.accepted)
    print(f"[faults] {load.posted} posted, {len(accepted)} accepted, answers {dict(load.answers)}", flush=True)
    assert len(accepted) >= MESSAGES, f"only {len(accepted)} accepted: {dict(load.answers)}"

    def drained() -> bool:
        states = email_states(mail_bed, domain)
        settled = all(states.get(i, ("", ""))[1] == "delivered" for i in accepted)
        return settled and queued(mail_bed, domain) == 0

    wait_until(drained, DRAIN_TIMEOUT, "every accepted message delivered", interval=5)
    print(f"[faults] drained {time.monotonic() - started:.0f} s after the first batch", flush=True)

    received: Counter[str] = Counter()

    def arrived() -> bool:
        nonlocal received
        received = arrivals(mail_bed, domain)
        return accepted <= set(received)

    wait_until(arrived, 60, "every accepted message at the remote MX", interval=5)
    duplicates = {i: n for i, n in received.items() if n > 1}
    print(f"[faults] remote MX: {sum(received.values())} messages, {len(received)} Message-IDs, "
          f"{len(set(received) - accepted)} not answered 200, {len(duplicates)} duplicated", flush=True)
    assert duplicates == {}
    statuses = {answer for answer in load.answers if answer.isdigit()}
    assert statuses <= ACCEPTABLE_STATUSES, f"the API answered {dict(load.answers)}"
