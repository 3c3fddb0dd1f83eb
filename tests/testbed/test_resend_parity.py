"""Resend parity on the deployed API (granian on 443, the ACME certificate): every served operation of Resend's
transactional groups matches Resend's OpenAPI description; Resend's Node SDK runs its flows unchanged; a real
bounce's webhook, sent by the deployed dispatcher to a host outside, is Resend's shape and verifies with both
official SDKs' `webhooks.verify`, reading the svix-* headers; mail from the remote MX's host to a domain that
receives is stored with its verdicts, read with both SDKs and announced by a webhook that verifies; and a tracked
email that arrived at the remote MX, opened and clicked from outside, gives events and webhooks that verify, while
a changed redirect token is refused."""

from __future__ import annotations

import json
import ssl
import time
import uuid
from pathlib import Path

import httpx
import pytest
import resend

from postyard.testbed import internet
from tests.inbound_mail import ATTACHMENT, ATTACHMENT_NAME, inbound_message
from tests.node_sdk import NODE_DIR, run_node_sdk
from tests.resend_coverage import CoverageRun
from tests.resend_spec import webhook_event_validator
from tests.testbed.appliance_support import (
    Appliance,
    open_appliance,
    outside_webhook_receiver,
    receive_on,
    send_from_internet,
    verified_domain,
)
from tests.testbed.outside_http import OutsideHttp

WEBHOOK_PORT = 8097


@pytest.fixture(scope="module")
def opened(single_testbed, tmp_path_factory, monkeypatch_module) -> Appliance:
    return open_appliance(single_testbed, tmp_path_factory.mktemp("ca"), monkeypatch_module)


@pytest.fixture(scope="module")
def domain(opened) -> str:
    return verified_domain(opened)


def _sent_from_internet(opened: Appliance, domain: str, address: str, mail_from: str = "alice@remote.test") -> None:
    receive_on(opened, domain)
    replies = send_from_internet(opened, mail_from, address, inbound_message(mail_from, address))
    assert replies.get("data", [0])[0] == 250, replies


def _node_env(opened: Appliance) -> dict[str, str]:
    """Node resolves the testbed's names through tests/node/hosts.cjs and trusts the ACME test CA."""
    return {"NODE_OPTIONS": f"--require {NODE_DIR / 'hosts.cjs'}", "NODE_EXTRA_CA_CERTS": str(opened.ca_bundle),
            "POSTYARD_NODE_HOSTS": json.dumps(opened.mail.host_names())}


def test_every_served_resend_operation_matches_resends_description_on_the_deployed_api(opened, domain,
                                                                                      single_testbed):
    trust = ssl.create_default_context(cafile=opened.ca_bundle)
    with httpx.Client(base_url=opened.url, verify=trust, timeout=30,
                      headers={"Authorization": f"Bearer {opened.api_key}"}) as client:
        run = CoverageRun(client, domain)
        run.run(webhook_endpoint=f"http://{single_testbed.outside_address}:9/hook",
                deliver_inbound=lambda address: _sent_from_internet(opened, domain, address))
    counts, problems = run.report()
    print("\n".join(f"{group}: {ok} of {total}" for group, (ok, total) in counts.items()))
    assert problems == [], "\n".join(problems)


def test_the_node_sdk_runs_every_flow_it_has_against_the_deployed_api(opened, domain, single_testbed):
    seen = run_node_sdk(opened.url, opened.api_key, "flows", domain,
                        f"http://{single_testbed.outside_address}:9/hook", extra_env=_node_env(opened))
    assert seen["email"] == "From Node" and seen["attachment"] == len(b"hello from node")
    assert seen["canceled"] == "canceled" and seen["rendered"] == "<p>Welcome Bob</p>"


@pytest.fixture(scope="module")
def webhook_log(single_testbed, tmp_path_factory):
    with outside_webhook_receiver(single_testbed, tmp_path_factory.mktemp("hooks"), WEBHOOK_PORT) as path:
        yield path


def _delivery(webhook_log: Path, email_id: str, event_type: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in webhook_log.read_text().splitlines():
            delivery = json.loads(line)
            body = json.loads(delivery["body"])
            if body["type"] == event_type and body["data"]["email_id"] == email_id:
                return {"payload": delivery["body"], "headers": {k.lower(): v for k, v in delivery["headers"].items()}}
        time.sleep(1)
    raise AssertionError(f"no {event_type} webhook for {email_id} within {timeout:g} s")


def _verified_by_both_sdks(opened: Appliance, delivery: dict, secret: str, event_type: str) -> dict:
    """The event each official SDK's `webhooks.verify` reads from the delivery (its svix-* headers, as Resend's
    docs read them), once both agree and it matches Resend's schema of the event type."""
    headers = delivery["headers"]
    svix = {"id": headers["svix-id"], "timestamp": headers["svix-timestamp"], "signature": headers["svix-signature"]}
    by_python = resend.Webhooks.verify({"payload": delivery["payload"], "headers": svix, "webhook_secret": secret})
    by_node = run_node_sdk(opened.url, opened.api_key, "verify", extra_env=_node_env(opened),
                           stdin={**delivery, "secret": secret})
    errors = [e.message for e in webhook_event_validator(event_type).iter_errors(by_python)]
    assert by_python == by_node and errors == []
    return by_python


def test_a_real_bounce_webhook_is_resends_shape_and_verifies_with_both_sdks(opened, domain, webhook_log,
                                                                           single_testbed):
    hook = resend.Webhooks.create({"endpoint": f"http://{single_testbed.outside_address}:{WEBHOOK_PORT}/hook",
                                   "events": ["email.bounced"]})
    bounced = resend.Emails.send({"from": f"hello@{domain}", "to": [internet.REJECTED_RECIPIENT],
                                  "subject": "to nobody", "text": "This one bounces."})
    by_python = _verified_by_both_sdks(opened, _delivery(webhook_log, bounced["id"], "email.bounced"),
                                       hook["signing_secret"], "email.bounced")
    assert by_python["data"]["bounce"]["type"] == "Permanent" and by_python["data"]["bounce"]["diagnosticCode"]


def _received(email_to: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in resend.Emails.Receiving.list({"limit": 100})["data"] if email_to in e["to"]]
        if found:
            return found[0]
        time.sleep(1)
    raise AssertionError(f"nothing received for {email_to} within {timeout:g} s")


def test_mail_from_the_internet_to_a_receiving_domain_is_stored_with_verdicts_and_announced(
        opened, domain, webhook_log, single_testbed):
    hook = resend.Webhooks.create({"endpoint": f"http://{single_testbed.outside_address}:{WEBHOOK_PORT}/hook",
                                   "events": ["email.received"]})
    sender_domain = f"i{uuid.uuid4().hex[:10]}.test"
    internet_host = opened.mail.internet
    opened.mail.publish([
        {"name": sender_domain, "type": "TXT", "value": f"v=spf1 ip4:{internet_host.public_address} -all"},
        {"name": f"_dmarc.{sender_domain}", "type": "TXT", "value": "v=DMARC1; p=reject"}])
    address = f"support@{domain}"
    _sent_from_internet(opened, domain, address, mail_from=f"alice@{sender_domain}")

    listed = _received(address)
    assert (listed["from"], listed["subject"]) == (f"alice@{sender_domain}", "Invoice 42")
    assert (listed["authentication"]["spf"], listed["authentication"]["dkim"], listed["authentication"]["dmarc"]) \
        == ("pass", "none", "pass")
    email = resend.Emails.Receiving.get(listed["id"])
    assert email["text"].strip() == "Your invoice is attached." and "Received" in email["headers"]
    attachments = resend.Emails.Receiving.Attachments.list(listed["id"])
    attachment = resend.Emails.Receiving.Attachments.get(listed["id"], attachments["data"][0]["id"])
    trust = ssl.create_default_context(cafile=opened.ca_bundle)
    assert httpx.get(attachment["download_url"], verify=trust).content == ATTACHMENT
    seen = run_node_sdk(opened.url, opened.api_key, "receiving", listed["id"], extra_env=_node_env(opened))
    assert seen == {"listed": True, "subject": "Invoice 42", "from": f"alice@{sender_domain}",
                    "attachment": ATTACHMENT_NAME, "downloaded": len(ATTACHMENT)}

    by_python = _verified_by_both_sdks(opened, _delivery(webhook_log, listed["id"], "email.received"),
                                       hook["signing_secret"], "email.received")
    assert [a["filename"] for a in by_python["data"]["attachments"]] == [ATTACHMENT_NAME]


def test_port_25_takes_no_mail_for_a_domain_that_does_not_receive(opened, single_testbed):
    other = verified_domain(opened)
    address = f"support@{other}"
    replies = send_from_internet(opened, "alice@remote.test", address, inbound_message("alice@remote.test", address))
    assert replies["rcpt"][0] == 554 and "5.7.1" in replies["rcpt"][1], replies
    assert "data" not in replies


# Run on the remote MX's host: the HTML part of the message whose Message-ID is argv[2], once it has arrived.
READ_HTML = r"""
import email, pathlib, sys
for folder in ("new", "cur"):
    directory = pathlib.Path(sys.argv[1], folder)
    for path in sorted(directory.iterdir()) if directory.is_dir() else []:
        raw = path.read_bytes()
        if sys.argv[2].encode() in raw[:16384]:
            message = email.message_from_bytes(raw)
            part = next(p for p in message.walk() if p.get_content_type() == "text/html")
            print(part.get_payload(decode=True).decode())
            sys.exit(0)
"""
TRACKED_LINK = "https://shop.example/offer?id=7&ref=mail"


def _arrived_html(opened: Appliance, message_id: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = opened.mail.on_internet_host(["python3", "-c", READ_HTML, internet.MAILDIR, message_id], timeout=60)
        if found.strip():
            return found
        time.sleep(1)
    raise AssertionError(f"{message_id} not at the remote MX within {timeout:g} s")


def test_a_tracked_email_opened_and_clicked_from_outside_gives_events_and_webhooks_that_verify(
        opened, domain, webhook_log, single_testbed):
    domain_id = next(d["id"] for d in resend.Domains.list()["data"] if d["name"] == domain)
    resend.Domains.update({"id": domain_id, "open_tracking": True, "click_tracking": True})
    hook = resend.Webhooks.create({"endpoint": f"http://{single_testbed.outside_address}:{WEBHOOK_PORT}/hook",
                                   "events": ["email.opened", "email.clicked"]})
    sent = resend.Emails.send({"from": f"news@{domain}", "to": [f"reader@{internet.MX_DOMAIN}"], "subject": "Offer",
                               "html": f'<p>See <a href="{TRACKED_LINK.replace("&", "&amp;")}">the offer</a></p>'})
    html = _arrived_html(opened, f"<{sent['id']}@{domain}>")
    click = html.split('href="', 1)[1].split('"', 1)[0]
    pixel = html.split('<img src="', 1)[1].split('"', 1)[0]
    assert click.startswith(f"{opened.url}/t/c/") and pixel.startswith(f"{opened.url}/t/o/"), html

    reader = OutsideHttp(single_testbed.outside_netns, opened.url, opened.ca_bundle,
                         headers={"User-Agent": "Reader/1.0"})
    try:
        seen = reader.get(pixel.removeprefix(opened.url))
        followed = reader.get(click.removeprefix(opened.url), follow_redirects=False)
        token = click.rsplit("/", 1)[1]
        changed = reader.get(f"/t/c/{token[:-4]}{'AAAA' if not token.endswith('AAAA') else 'BBBB'}",
                             follow_redirects=False)
    finally:
        reader.close()
    assert seen.status_code == 200 and seen.headers["content-type"] == "image/gif"
    assert (followed.status_code, followed.headers["location"]) == (302, TRACKED_LINK)
    assert changed.status_code == 404 and "location" not in changed.headers

    events = httpx.get(f"{opened.url}/emails/{sent['id']}", headers={"Authorization": f"Bearer {opened.api_key}"},
                       verify=ssl.create_default_context(cafile=opened.ca_bundle)).json()["events"]
    tracked = [e for e in events if e["type"] in ("opened", "clicked")]
    assert [e["type"] for e in tracked] == ["opened", "clicked"]
    assert {e["detail"]["ip"] for e in tracked} == {single_testbed.outside_address}
    for kind in ("email.opened", "email.clicked"):
        by_python = _verified_by_both_sdks(opened, _delivery(webhook_log, sent["id"], kind),
                                           hook["signing_secret"], kind)
    assert by_python["data"]["click"]["link"] == TRACKED_LINK
    assert by_python["data"]["click"]["ipAddress"] == single_testbed.outside_address
