"""The mail tier with real clients from the outside vantage point, on both session testbeds:
submission rules, delivery to the remote MX with a DKIM signature that verifies, the MX role of
port 25, new keys signing within seconds, and fail2ban."""

from __future__ import annotations

import re
import time

import pytest

from app import tls_policy
from app.mailhost.postfix_maps import BOUNCE_DOMAINS
from postyard.testbed import internet
from tests.testbed.mail_support import MailTestbed, Sender, make_message

REMOTE = f"inbox@{internet.MX_DOMAIN}"
# From a new return-path domain's swap into Postfix's map until port 25 takes mail for it; Postfix's own
# look at replaced maps, without the reload, comes only every 10 s.
TAKEN_WITHIN = 3.0


@pytest.fixture(scope="module")
def mail_bed(each_testbed) -> MailTestbed:
    return MailTestbed(each_testbed)


@pytest.fixture(scope="module")
def sender(mail_bed: MailTestbed) -> Sender:
    return mail_bed.new_sender()


def _master_pid(mail_bed: MailTestbed) -> str:
    return mail_bed.on_mail_host("systemctl show -p MainPID --value postfix@-.service").strip()


def test_auth_before_starttls_is_refused_on_587(mail_bed: MailTestbed, sender: Sender):
    session = mail_bed.outside.smtp(host=mail_bed.mail.public_address, port=587,
                                    auth=[sender.username, sender.password])
    assert "auth" not in session["features"]
    assert session["auth"][0] == 530 and session["auth"][1].startswith("5.7.0")


def test_a_wrong_password_gets_535(mail_bed: MailTestbed, sender: Sender):
    session = mail_bed.outside.smtp(host=mail_bed.mail.public_address, port=587, tls="starttls",
                                    auth=[sender.username, "not-the-password"])
    assert session["auth"][0] == 535 and session["auth"][1].startswith("5.7.8")


def test_a_foreign_sender_domain_is_refused_with_5_7_1(mail_bed: MailTestbed, sender: Sender):
    other = mail_bed.new_sender()
    session = mail_bed.submit(587, sender, make_message(other.domain))
    assert session["auth"][0] == 235
    refusal = session.get("rcpt") or session["mail"]
    assert refusal[0] in (553, 554) and refusal[1].startswith("5.7.1"), session
    assert "not owned by user" in refusal[1]


@pytest.mark.parametrize("port", [587, 465])
def test_submitted_mail_arrives_signed_and_verifies(mail_bed: MailTestbed, sender: Sender, port: int):
    message = make_message(sender.domain, subject=f"via {port}")
    session = mail_bed.submit(port, sender, message)
    assert session["data"][0] == 250, session
    assert session["tls_version"] in tls_policy.PROTOCOLS
    raw = mail_bed.wait_for(message["Message-ID"])
    assert mail_bed.dkim_verifies(raw)
    signature = re.search(rb"DKIM-Signature:(.*?)\n(?=\S)", raw, re.S).group(1)
    assert re.search(rb"\bd=" + re.escape(sender.domain.encode()) + rb";", signature)  # aligned with From
    assert b"with ESMTPS" in raw and b"TLSv1." in raw  # delivered to the remote MX over TLS


def test_the_submitting_clients_address_is_not_in_the_delivered_message(mail_bed: MailTestbed, sender: Sender):
    message = make_message(sender.domain, subject="privacy")
    mail_bed.submit(587, sender, message)
    raw = mail_bed.wait_for(message["Message-ID"])
    assert mail_bed.bed.outside_address.encode() not in raw


def test_the_return_path_domain_publishes_spf_for_the_mail_host_and_dmarc_exists(mail_bed: MailTestbed,
                                                                                   sender: Sender):
    spf = next(r for r in sender.records if r["record"] == "SPF" and r["type"] == "TXT")
    assert spf["name"] == f"send.{sender.domain}" and f"a:{mail_bed.mail.fqdn}" in spf["value"]
    assert mail_bed.dns_txt(f"_dmarc.{sender.domain}".encode()).startswith(b"v=DMARC1")
    assert mail_bed.dns_txt(spf["name"].encode()) == spf["value"].encode()


def test_port_25_takes_mail_for_a_bounce_domain_and_hands_it_to_the_app(mail_bed: MailTestbed, sender: Sender):
    report = make_message(sender.domain, subject="Delivery Status Notification")
    session = mail_bed.outside.smtp(host=mail_bed.mail.public_address, port=25, tls="starttls", mail_from="",
                                    rcpt_to=f"bounce+{'0' * 32}@send.{sender.domain}", message=report.as_string())
    assert session["rcpt"][0] == 250 and session["data"][0] == 250, session
    queue_id = session["data"][1].rsplit(" ", 1)[-1]
    deadline = time.monotonic() + 30
    while f"{queue_id}: " not in (log := mail_bed.on_mail_host(f"journalctl -q --no-pager -g {queue_id}")) \
            or "status=" not in log:
        assert time.monotonic() < deadline, log
        time.sleep(1)
    assert "relay=postyard-bounce" in log and "status=sent" in log, log


def test_port_25_takes_a_new_return_path_domain_at_once_because_postfix_reloads_on_a_swap(mail_bed: MailTestbed):
    # trivial-rewrite, which answers relay_domains, looks at its maps only every 10 s; the sync's swap stamp
    # has systemd reload Postfix (roles/postfix.py).
    since = time.time() - 1
    fresh = mail_bed.new_sender()
    bounce_domain = f"send.{fresh.domain}"
    mail_bed.wait_for_map_entry(BOUNCE_DOMAINS, bounce_domain, lambda found: found == fresh.domain)
    deadline = time.monotonic() + TAKEN_WITHIN
    while True:
        session = mail_bed.outside.smtp(host=mail_bed.mail.public_address, port=25, tls="starttls", mail_from="",
                                        rcpt_to=f"bounce+{'0' * 32}@{bounce_domain}")
        if session["rcpt"][0] == 250 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert session["rcpt"][0] == 250, f"port 25 refused {bounce_domain} {TAKEN_WITHIN} s after its swap: {session}"
    reloads = mail_bed.on_mail_host(f"journalctl -q --no-pager -o cat --since @{since:.0f} -t postfix/master "
                                    "-g 'reload -- version'")
    assert reloads.strip(), "Postfix did not reload after the map swap"


def test_port_25_relays_nothing_without_auth(mail_bed: MailTestbed, sender: Sender):
    session = mail_bed.outside.smtp(host=mail_bed.mail.public_address, port=25, tls="starttls",
                                    mail_from=f"app@{sender.domain}", rcpt_to=REMOTE)
    assert "auth" not in session["features_after_tls"]
    assert session["rcpt"][0] == 554 and session["rcpt"][1].startswith("5.7.1"), session


def test_a_new_domain_signs_within_ten_seconds_without_a_postfix_restart(mail_bed: MailTestbed):
    pid_before = _master_pid(mail_bed)
    created = time.monotonic()
    fresh = mail_bed.new_sender(algorithm="ed25519")
    message = make_message(fresh.domain, subject="fresh key")
    deadline = created + 10
    while True:
        message.replace_header("Message-ID", f"<{time.monotonic_ns()}@{fresh.domain}>")
        session = mail_bed.submit(587, fresh, message)
        assert session["data"][0] == 250, session
        raw = mail_bed.wait_for(message["Message-ID"])
        if b"DKIM-Signature:" in raw or time.monotonic() > deadline:
            break
    assert b"DKIM-Signature:" in raw, "the new domain's mail was not signed within 10 s of its creation"
    assert b"a=ed25519-sha256" in raw and mail_bed.dkim_verifies(raw)
    assert _master_pid(mail_bed) == pid_before


def test_a_login_over_its_rate_is_deferred_with_4_7_1(mail_bed: MailTestbed):
    busy = mail_bed.new_sender()
    message = make_message(busy.domain, subject="rate")
    session = mail_bed.outside.smtp(
        host=mail_bed.mail.public_address, port=587, tls="starttls", auth=[busy.username, busy.password],
        mail_from=f"app@{busy.domain}", rcpt_to=REMOTE, message=message.as_string(), count=22,
    )
    replies = [t.get("data", t.get("rcpt", t["mail"])) for t in session["transactions"]]
    accepted = [r for r in replies if r[0] == 250]
    deferred = [r for r in replies if r[0] == 450]
    assert len(accepted) == 20 and len(deferred) == 2, replies  # the testbed allows 20 a minute
    assert deferred[0][1].startswith("4.7.1") and "Rate limit reached" in deferred[0][1]
