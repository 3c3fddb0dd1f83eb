"""Services that come back, on the one-host testbed: a SIGKILLed Postfix master is started again by systemd
and mail is accepted again within 15 s, Postfix's maps keep answering while PostgreSQL is down, and a
SIGKILLed API is restarted and answers HTTPS as soon as systemd calls it active. Each test prints how long
each step took."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from typing import TypeVar

import httpx
import pytest

from app.host_layout import API_LIVENESS_PATH, API_SERVICE
from app.mailhost import postfix_maps
from postyard.appliance_client import name_resolver
from postyard.ssh import SshError, ssh_run
from postyard.testbed import internet
from roles import postfix, postgresql
from tests.testbed.mail_support import MailTestbed, Sender, make_message

T = TypeVar("T")

POSTFIX_UNIT = "postfix@-.service"
API_UNIT = f"{API_SERVICE}.service"
# From the SIGKILL of the master until a submission on 587 is answered 250 again.
POSTFIX_BACK_WITHIN = 15.0
# From the SIGKILL of the API until systemd calls it active again (its import takes about 11 s).
API_BACK_WITHIN = 60.0


@pytest.fixture(scope="module")
def mail_bed(single_testbed) -> MailTestbed:
    return MailTestbed(single_testbed)


@pytest.fixture(scope="module")
def sender(mail_bed: MailTestbed) -> Sender:
    return mail_bed.new_sender()


def on_host(mail_bed: MailTestbed, unit: str, command: str) -> str:
    """A command on the host that runs the unit (the API's host or the mail host; one host here)."""
    return ssh_run(mail_bed.target(mail_bed.api if unit == API_UNIT else mail_bed.mail), command)


def unit_state(mail_bed: MailTestbed, unit: str) -> dict[str, str]:
    """systemd's view of a unit: ActiveState, MainPID and the monotonic timestamps (µs) of its main
    process's start and of its last entering the active state."""
    properties = "ActiveState,MainPID,ExecMainStartTimestampMonotonic,ActiveEnterTimestampMonotonic"
    shown = on_host(mail_bed, unit, f"systemctl show --property={properties} {unit}")
    return dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)


def poll(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2) -> tuple[T, float]:
    """The first value the probe returns that is not None, and the seconds it took; fails after timeout."""
    started = time.monotonic()
    while (value := probe()) is None:
        assert time.monotonic() - started < timeout, f"{what} not within {timeout:.0f} s"
        time.sleep(interval)
    return value, time.monotonic() - started


def restarted(mail_bed: MailTestbed, unit: str, old_pid: str) -> Callable[[], dict[str, str] | None]:
    """A probe: the unit's state once systemd calls it active with a main process other than old_pid."""
    def probe() -> dict[str, str] | None:
        state = unit_state(mail_bed, unit)
        return state if state["ActiveState"] == "active" and state["MainPID"] not in ("0", old_pid) else None

    return probe


def test_systemd_tracks_the_postfix_master_by_the_pid_file_postfix_writes(mail_bed: MailTestbed):
    queue_directory = mail_bed.on_mail_host("postconf -h queue_directory").strip()
    pid_file = mail_bed.on_mail_host(f"systemctl show --property=PIDFile --value {POSTFIX_UNIT}").strip()
    master = mail_bed.on_mail_host(f"head -n 1 {pid_file}").strip()
    assert pid_file == f"{queue_directory}/pid/master.pid" == postfix.MASTER_PID_FILE
    assert unit_state(mail_bed, POSTFIX_UNIT)["MainPID"] == master


def test_a_killed_postfix_master_is_started_again_and_mail_is_accepted_within_15_s(mail_bed: MailTestbed,
                                                                                     sender: Sender):
    old_pid = unit_state(mail_bed, POSTFIX_UNIT)["MainPID"]
    assert old_pid != "0", "systemd does not know Postfix's master"
    message = make_message(sender.domain, subject="after the master was killed")
    killed = time.monotonic()
    mail_bed.on_mail_host(f"kill -KILL {old_pid}")

    _, active_after = poll(restarted(mail_bed, POSTFIX_UNIT, old_pid), POSTFIX_BACK_WITHIN, "a new Postfix master")

    def master_answers() -> bool | None:
        try:
            mail_bed.on_mail_host("postfix status")
        except SshError:
            return None
        return True

    poll(master_answers, POSTFIX_BACK_WITHIN, "`postfix status`")

    def port_25_answers() -> bool | None:
        try:
            session = mail_bed.outside.smtp(host=mail_bed.mail.public_address, port=25, tls="starttls")
        except RuntimeError:  # the probe lost the connection while Postfix was starting
            return None
        return True if session.get("ehlo") == 250 and session.get("starttls", [0])[0] == 220 else None

    poll(port_25_answers, POSTFIX_BACK_WITHIN, "EHLO and STARTTLS on port 25", interval=0.5)

    def submitted() -> dict | None:
        try:
            session = mail_bed.submit(587, sender, message)
        except RuntimeError:  # the probe lost the connection while Postfix was starting
            return None
        return session if session.get("data", [0])[0] == 250 else None

    poll(submitted, POSTFIX_BACK_WITHIN, "a submission answered 250 on 587", interval=0.5)
    accepted_after = time.monotonic() - killed
    print(f"[restarts] Postfix master SIGKILLed: active again after {active_after:.1f} s, "
          f"mail accepted on 587 after {accepted_after:.1f} s")
    assert accepted_after <= POSTFIX_BACK_WITHIN
    assert mail_bed.wait_for(message["Message-ID"])


def test_postfix_keeps_its_maps_while_postgresql_is_down(mail_bed: MailTestbed, sender: Sender):
    db = mail_bed.target(mail_bed.db)
    # smtpd's lookup of a sender in the sender's domain, in the map the mail-host sync wrote
    lookup = f"postmap -q @{sender.domain} cdb:{postfix.map_path(postfix_maps.SENDER_LOGINS)} 2>&1; true"
    before = mail_bed.on_mail_host(lookup)
    ssh_run(db, ["systemctl", "stop", postgresql.UNIT])
    try:
        during = mail_bed.on_mail_host(lookup)
    finally:
        ssh_run(db, ["systemctl", "start", postgresql.UNIT], timeout=120)
    print(f"[restarts] PostgreSQL stopped: the sender-login map still answers {during.strip()!r}")
    assert sender.username in before.strip().split(",")
    assert during == before


@pytest.fixture(scope="module")
def api_client(mail_bed: MailTestbed, monkeypatch_module: pytest.MonkeyPatch) -> Callable[[], httpx.Client]:
    """New clients of the API as one on the internet reaches it: its host name resolved, pebble's root trusted."""
    monkeypatch_module.setattr(socket, "getaddrinfo", name_resolver(mail_bed.host_names()))
    context = ssl.create_default_context(cadata=internet.acme_root_pem(mail_bed.bed))
    return lambda: httpx.Client(base_url=mail_bed.api_url, verify=context, timeout=5)


def https_answers(client: httpx.Client) -> bool | None:
    try:
        return True if client.get(API_LIVENESS_PATH).status_code == 200 else None
    except httpx.TransportError:
        return None


def test_a_killed_api_is_restarted_and_answers_https_as_soon_as_systemd_calls_it_active(
        mail_bed: MailTestbed, api_client: Callable[[], httpx.Client]):
    with api_client() as client:
        assert https_answers(client), "the API does not answer before the test"
        old_pid = unit_state(mail_bed, API_UNIT)["MainPID"]
        on_host(mail_bed, API_UNIT, f"kill -KILL {old_pid}")  # the main process only, as in test_faults.py
        state, active_after = poll(restarted(mail_bed, API_UNIT, old_pid), API_BACK_WITHIN, "the API active again")
    # A new connection, so no keep-alive connection to a worker of the killed process can answer instead.
    with api_client() as fresh:
        answered_when_active = https_answers(fresh)
    # systemd's own clock: from granian's start until it called the unit active (the readiness wait).
    waited = (int(state["ActiveEnterTimestampMonotonic"]) - int(state["ExecMainStartTimestampMonotonic"])) / 1e6
    print(f"[restarts] API SIGKILLed: systemd active again after {active_after:.1f} s (granian started, then "
          f"{waited:.1f} s until it answered)")
    assert answered_when_active, "systemd called the API active before it answered HTTPS"
