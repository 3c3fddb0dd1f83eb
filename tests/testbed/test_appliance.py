"""The appliance end to end on both topologies, with the official `resend` SDK against the deployed
API (granian on 443, the ACME certificate): a domain published and verified, a message delivered
DKIM-signed to the remote MX, its events as signed webhooks, and a bounce suppressing the address."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import resend
from standardwebhooks import Webhook

from postyard.deployer import REPO
from postyard.testbed import internet
from tests.testbed.appliance_support import open_appliance, verified_domain
from tests.testbed.mail_support import MailTestbed, dkim_verifies

WEBHOOK_PORT = 8099


@pytest.fixture(scope="module", params=["single", "split"])
def bed(request, single_testbed, split_testbed):
    return single_testbed if request.param == "single" else split_testbed


@pytest.fixture(scope="module")
def appliance(bed, tmp_path_factory, monkeypatch_module) -> MailTestbed:
    return open_appliance(bed, tmp_path_factory.mktemp("ca"), monkeypatch_module).mail


@pytest.fixture(scope="module")
def webhook_log(bed, tmp_path_factory):
    path = tmp_path_factory.mktemp("hooks") / "deliveries.jsonl"
    path.touch()
    receiver = subprocess.Popen(
        ["ip", "netns", "exec", bed.outside_netns, sys.executable, "-m", "tests.testbed.webhook_receiver",
         bed.outside_address, str(WEBHOOK_PORT), str(path)], cwd=REPO)
    yield path
    receiver.terminate()
    receiver.wait(10)


@pytest.fixture(scope="module")
def domain(appliance) -> str:
    return verified_domain(appliance)


def wait_for_event(email_id: str, wanted: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while (email := resend.Emails.get(email_id))["last_event"] != wanted:
        assert time.monotonic() < deadline, f"{email_id} is {email['last_event']}, not {wanted}"
        time.sleep(1)
    return email


def test_the_sdk_sends_a_message_that_arrives_signed_and_is_delivered(appliance, domain, webhook_log):
    hook = resend.Webhooks.create({"endpoint": f"http://{appliance.bed.outside_address}:{WEBHOOK_PORT}/hook",
                                   "events": ["email.sent", "email.delivered"]})
    subject = f"end to end {uuid.uuid4().hex}"
    sent = resend.Emails.send({"from": f"Acme <hello@{domain}>", "to": [f"inbox@{internet.MX_DOMAIN}"],
                               "subject": subject, "text": "Delivered by the appliance."})
    raw = appliance.wait_for(subject, timeout=90)
    assert dkim_verifies(raw, appliance)
    wait_for_event(sent["id"], "delivered")

    deadline = time.monotonic() + 60
    while len(deliveries := [json.loads(line) for line in Path(webhook_log).read_text().splitlines()]) < 2:
        assert time.monotonic() < deadline, deliveries
        time.sleep(1)
    verifier = Webhook(hook["signing_secret"])
    events = {verifier.verify(d["body"], {k.lower(): v for k, v in d["headers"].items()})["type"] for d in deliveries}
    assert {"email.sent", "email.delivered"} <= events


def test_a_hard_bounce_suppresses_the_address_and_the_next_send_stops_before_postfix(appliance, domain):
    bounced = resend.Emails.send({"from": f"hello@{domain}", "to": [internet.REJECTED_RECIPIENT],
                                  "subject": "to nobody", "text": "This one bounces."})
    wait_for_event(bounced["id"], "bounced")
    assert resend.Suppressions.get(internet.REJECTED_RECIPIENT)["email"] == internet.REJECTED_RECIPIENT
    again = resend.Emails.send({"from": f"hello@{domain}", "to": [internet.REJECTED_RECIPIENT],
                                "subject": "to nobody again", "text": "Never leaves."})
    assert wait_for_event(again["id"], "suppressed", timeout=30)["last_event"] == "suppressed"
