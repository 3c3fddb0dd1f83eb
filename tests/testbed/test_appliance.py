"""The appliance end to end on both topologies, with the official `resend` SDK against the deployed
API (granian on 443, the ACME certificate): a domain published and verified, a message delivered
DKIM-signed to the remote MX, its events as signed webhooks, and a bounce suppressing the address."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
import resend
from standardwebhooks import Webhook

from postyard.testbed import internet
from tests.testbed.appliance_support import Appliance, open_appliance, outside_webhook_receiver, verified_domain
from tests.testbed.mail_support import MailTestbed, Sender, make_message

WEBHOOK_PORT = 8099


@pytest.fixture(scope="module")
def bed(each_testbed):
    return each_testbed


@pytest.fixture(scope="module")
def opened(bed, tmp_path_factory, monkeypatch_module) -> Appliance:
    return open_appliance(bed, tmp_path_factory.mktemp("ca"), monkeypatch_module)


@pytest.fixture(scope="module")
def appliance(opened) -> MailTestbed:
    return opened.mail


@pytest.fixture(scope="module")
def webhook_log(bed, tmp_path_factory):
    with outside_webhook_receiver(bed, tmp_path_factory.mktemp("hooks"), WEBHOOK_PORT) as path:
        yield path


@pytest.fixture(scope="module")
def domain(opened) -> str:
    return verified_domain(opened)


def wait_for_event(email_id: str, wanted: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while (email := resend.Emails.get(email_id))["last_event"] != wanted:
        assert time.monotonic() < deadline, f"{email_id} is {email['last_event']}, not {wanted}"
        time.sleep(1)
    return email


@pytest.fixture(scope="module")
def hook(appliance, webhook_log):
    return resend.Webhooks.create({"endpoint": f"http://{appliance.bed.outside_address}:{WEBHOOK_PORT}/hook",
                                   "events": ["email.sent", "email.delivered"]})


def webhook_events(webhook_log: Path, hook: dict, email_id: str, wanted: set[str]) -> set[str]:
    """The verified webhook event types received for one email, once all of `wanted` are in."""
    verifier = Webhook(hook["signing_secret"])
    deadline = time.monotonic() + 60
    while True:
        deliveries = [json.loads(line) for line in Path(webhook_log).read_text().splitlines()]
        events = [verifier.verify(d["body"], {k.lower(): v for k, v in d["headers"].items()}) for d in deliveries]
        found = {e["type"] for e in events if e["data"]["email_id"] == email_id}
        if wanted <= found or time.monotonic() > deadline:
            return found
        time.sleep(1)


def test_the_sdk_sends_a_message_that_arrives_signed_and_is_delivered(appliance, domain, webhook_log, hook):
    subject = f"end to end {uuid.uuid4().hex}"
    sent = resend.Emails.send({"from": f"Acme <hello@{domain}>", "to": [f"inbox@{internet.MX_DOMAIN}"],
                               "subject": subject, "text": "Delivered by the appliance."})
    raw = appliance.wait_for(subject, timeout=90)
    assert appliance.dkim_verifies(raw)
    wait_for_event(sent["id"], "delivered")
    wanted = {"email.sent", "email.delivered"}
    assert webhook_events(webhook_log, hook, sent["id"], wanted) >= wanted


def test_mail_submitted_on_587_becomes_an_email_with_events_and_webhooks(opened, appliance, domain, webhook_log,
                                                                         hook):
    subject = f"over smtp {uuid.uuid4().hex}"
    submitted = appliance.submit(587, Sender(domain, *opened.smtp_login, records=[]), make_message(domain, subject))
    code, reply = submitted.get("data", [None, ""])  # every reply of the session shows when it has none
    assert code == 250 and "queued as " in reply, submitted
    email_id = reply.rsplit(" ", 1)[1]
    raw = appliance.wait_for(subject, timeout=90)
    assert appliance.dkim_verifies(raw)
    email = wait_for_event(email_id, "delivered")
    assert (email["subject"], email["to"]) == (subject, [f"inbox@{internet.MX_DOMAIN}"])
    wanted = {"email.sent", "email.delivered"}
    assert webhook_events(webhook_log, hook, email_id, wanted) >= wanted


def test_a_hard_bounce_suppresses_the_address_and_the_next_send_stops_before_postfix(appliance, domain):
    bounced = resend.Emails.send({"from": f"hello@{domain}", "to": [internet.REJECTED_RECIPIENT],
                                  "subject": "to nobody", "text": "This one bounces."})
    wait_for_event(bounced["id"], "bounced")
    assert resend.Suppressions.get(internet.REJECTED_RECIPIENT)["email"] == internet.REJECTED_RECIPIENT
    again = resend.Emails.send({"from": f"hello@{domain}", "to": [internet.REJECTED_RECIPIENT],
                                "subject": "to nobody again", "text": "Never leaves."})
    assert wait_for_event(again["id"], "suppressed", timeout=30)["last_event"] == "suppressed"
