"""Receiving (Resend's receiving API): a verified domain that receives takes mail through the receive pipe, which
Postfix runs for it on port 25. The message is stored with its SPF, DKIM and DMARC verdicts, read through
/emails/receiving with its attachments, and announced by an `email.received` webhook. Mail for a domain that
is not verified or does not receive is returned to its sender, and no other team reads what came in."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid

import dkim
import pytest
from conftest import verified_domain
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.ext.asyncio import create_async_engine
from webhook_support import deliver_all

from app.db import roles
from app.domain.receiving.retention import purge_expired_received
from app.mailhost.postfix_maps import BOUNCE_DOMAINS, BOUNCE_TRANSPORT, RECEIVE_TRANSPORT_NEXTHOP, render_maps
from tests.inbound_mail import ATTACHMENT, inbound_message

SENDING_ADDRESS = "192.0.2.10"
EX_NOUSER = 67


def pipe_in(env: dict[str, str], postgres, raw: bytes, recipients: list[str], client: str = SENDING_ADDRESS,
          sender: str = "", queue_id: str = "", helo: str | bytes = "mx.sender.test") -> int:
    """`postyard-api receive` as Postfix's pipe runs it, connected as the port-25 role."""
    arguments = [f"--queue-id={queue_id or uuid.uuid4().hex[:12].upper()}", f"--client={client}",
                 b"--helo=" + helo if isinstance(helo, bytes) else f"--helo={helo}", f"--sender={sender}", *recipients]
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))", "receive",
         *arguments], input=raw, env={**os.environ, **env, "POSTYARD_BOUNCE_DATABASE_URL": postgres.url(roles.BOUNCE)},
        capture_output=True, timeout=60)
    assert done.returncode in (0, EX_NOUSER), done.stderr.decode(errors="replace")[-3000:]
    return done.returncode


class Sender:
    """A sending domain outside, published in the test DNS with SPF, a DKIM key and a DMARC policy."""

    def __init__(self, dns_zone) -> None:
        self.domain = f"s{uuid.uuid4().hex[:10]}.example.test"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
        public = base64.b64encode(key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
        dns_zone.publish({"name": f"sel._domainkey.{self.domain}", "type": "TXT",
                          "value": f"v=DKIM1; k=rsa; p={public}"})
        dns_zone.add(self.domain, "TXT", f'"v=spf1 ip4:{SENDING_ADDRESS} -all"')
        dns_zone.add(f"_dmarc.{self.domain}", "TXT", '"v=DMARC1; p=reject"')

    def message(self, to: str) -> bytes:
        """A message from alice@ the domain, signed with its key."""
        raw = inbound_message(f"alice@{self.domain}", to)
        signature = dkim.sign(raw, b"sel", self.domain.encode(), self.key,
                              include_headers=[b"From", b"To", b"Subject", b"Message-ID"])
        return signature + raw


@pytest.fixture
def outside(dns_zone) -> Sender:
    return Sender(dns_zone)


def mark_receiving(postgres, domain_id: str) -> None:
    """Have a domain receive as if its records, its MX among them, had been found published (for tests of what
    comes after; `_receiving_domain` goes through DNS)."""
    postgres.psql("UPDATE domains SET status = 'verified', receiving = true, "
                  """record_status = record_status || '{"receiving_mx": "verified"}' """
                  f"WHERE id = '{domain_id}'", user="postyard_owner", database="postyard")


async def _receiving_domain(client, team, dns_zone, publish_mx: bool = True) -> str:
    """A domain created to receive, its records published in the test DNS (its MX unless told not to), verified."""
    created = (await client.post("/domains", json={"name": f"r{uuid.uuid4().hex[:10]}.example.test",
                                                   "capabilities": {"receiving": "enabled"}},
                                 headers=team.headers)).json()
    for record in created["records"]:
        if publish_mx or record["record"] != "Receiving":
            dns_zone.publish(record)
    verified = (await client.post(f"/domains/{created['id']}/verify", headers=team.headers)).json()
    assert verified["status"] == "verified", verified
    return created["name"]


async def test_a_domain_that_receives_shows_it_and_asks_for_its_own_mx(client, team, postgres, settings):
    created = await client.post("/domains", json={"name": f"r{uuid.uuid4().hex[:8]}.example.test",
                                                  "capabilities": {"receiving": "enabled"}}, headers=team.headers)
    assert created.status_code == 201, created.text
    domain = created.json()
    assert domain["capabilities"] == {"sending": "enabled", "receiving": "enabled"}
    receiving = [r for r in domain["records"] if r["record"] == "Receiving"]
    assert [(r["name"], r["type"], r["value"], r["priority"]) for r in receiving] == [
        (domain["name"], "MX", settings.mail_hostname, 10)]
    off = await client.patch(f"/domains/{domain['id']}", json={"capabilities": {"receiving": "disabled"}},
                             headers=team.headers)
    assert off.status_code == 200
    read = (await client.get(f"/domains/{domain['id']}", headers=team.headers)).json()
    assert read["capabilities"]["receiving"] == "disabled"
    assert not [r for r in read["records"] if r["record"] == "Receiving"]
    listed = (await client.get("/domains", headers=team.headers)).json()["data"]
    assert next(d for d in listed if d["id"] == domain["id"])["capabilities"]["receiving"] == "disabled"
    audit = (await client.get("/audit-logs", headers=team.headers)).json()["data"]
    assert any(e["action"] == "domain.updated" and e.get("details", {}).get("receiving") is False for e in audit)


async def test_sending_cannot_be_turned_off_and_unknown_capabilities_are_refused(client, team):
    for capabilities in ({"sending": "disabled"}, {"receiving": "maybe"}, {"forwarding": "enabled"}):
        response = await client.post("/domains", json={"name": f"c{uuid.uuid4().hex[:8]}.example.test",
                                                       "capabilities": capabilities}, headers=team.headers)
        assert response.status_code in (400, 422), response.text
        assert response.json()["message"]


async def test_a_received_message_is_stored_with_its_verdicts_and_attachment_and_announced(
        client, team, postgres, env, outside, receiver, dispatcher, dns_zone):
    name = await _receiving_domain(client, team, dns_zone)
    hooked = await client.post("/webhooks", json={"endpoint": receiver.url, "events": ["email.received"]},
                               headers=team.headers)
    assert hooked.status_code == 201
    raw = outside.message(f"Support <support@{name}>")
    assert pipe_in(env, postgres, raw, [f"support@{name}"], sender=f"alice@{outside.domain}") == 0

    listed = (await client.get("/emails/receiving", headers=team.headers)).json()
    assert len(listed["data"]) == 1
    item = listed["data"][0]
    assert (item["from"], item["to"], item["cc"], item["subject"]) == (
        f"alice@{outside.domain}", [f"support@{name}"], [f"carol@{outside.domain}"], "Invoice 42")
    assert item["authentication"] | {"results": ""} == {"spf": "pass", "dkim": "pass", "dmarc": "pass",
                                                        "results": ""}
    assert [(a["filename"], a["content_type"], a["size"]) for a in item["attachments"]] == [
        ("invoice.pdf", "application/pdf", len(ATTACHMENT))]

    one = (await client.get(f"/emails/receiving/{item['id']}", headers=team.headers)).json()
    assert one["text"].strip() == "Your invoice is attached."
    assert one["html"].strip() == "<p>Your invoice is <b>attached</b>.</p>"
    assert one["headers"]["Subject"] == "Invoice 42"
    assert (one["envelope_from"], one["envelope_to"]) == (f"alice@{outside.domain}", [f"support@{name}"])
    assert "spf=pass" in one["authentication"]["results"] and "dmarc=pass" in one["authentication"]["results"]

    attachments = (await client.get(f"/emails/receiving/{item['id']}/attachments", headers=team.headers)).json()
    attachment = (await client.get(f"/emails/receiving/{item['id']}/attachments/{attachments['data'][0]['id']}",
                                   headers=team.headers)).json()
    download = await client.get(attachment["download_url"])
    assert (download.status_code, download.content) == (200, ATTACHMENT)
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.headers["x-content-type-options"] == "nosniff"

    await deliver_all(dispatcher)
    bodies = [json.loads(body) for _, body in receiver.requests]
    assert [b["type"] for b in bodies] == ["email.received"]
    data = bodies[0]["data"]
    assert (data["email_id"], data["from"], data["to"], data["subject"]) == (
        item["id"], f"alice@{outside.domain}", [f"support@{name}"], "Invoice 42")
    assert [a["filename"] for a in data["attachments"]] == ["invoice.pdf"]


async def test_a_forged_message_is_stored_with_failing_verdicts(client, team, postgres, env, outside, dns_zone):
    name = await _receiving_domain(client, team, dns_zone)
    raw = outside.message(f"support@{name}").replace(b"Your invoice is attached.", b"Pay to account 666 instead.")
    assert pipe_in(env, postgres, raw, [f"support@{name}"], client="198.51.100.7",
                 sender=f"alice@{outside.domain}") == 0
    item = (await client.get("/emails/receiving", headers=team.headers)).json()["data"][0]
    assert (item["authentication"]["spf"], item["authentication"]["dkim"], item["authentication"]["dmarc"]) == (
        "fail", "fail", "fail")


async def test_mail_for_a_domain_that_is_unverified_without_its_mx_or_not_receiving_is_returned_and_not_stored(
        client, team, postgres, env, outside, dns_zone):
    unverified = (await client.post("/domains", json={"name": f"u{uuid.uuid4().hex[:8]}.example.test",
                                                      "capabilities": {"receiving": "enabled"}},
                                    headers=team.headers)).json()["name"]
    # Verified to send, receiving on, but its MX points elsewhere: Postfix would hand the team mail meant for
    # the domain's real mailboxes, the platform's own outbound mail to it included.
    mx_elsewhere = await _receiving_domain(client, team, dns_zone, publish_mx=False)
    not_receiving = (await verified_domain(client, team, postgres))["name"]
    for name in (unverified, mx_elsewhere, not_receiving, "gmail.com"):
        assert pipe_in(env, postgres, outside.message(f"x@{name}"), [f"x@{name}"]) == EX_NOUSER, name
    assert (await client.get("/emails/receiving", headers=team.headers)).json()["data"] == []
    view = postgres.psql("SELECT domain FROM mail_receiving_domains", user="postyard_owner", database="postyard")
    assert unverified not in view and mx_elsewhere not in view and not_receiving not in view


async def test_another_team_reads_nothing_of_what_came_in(client, team, other_team, postgres, env, outside, dns_zone):
    name = await _receiving_domain(client, team, dns_zone)
    assert pipe_in(env, postgres, outside.message(f"support@{name}"), [f"support@{name}"]) == 0
    email_id = (await client.get("/emails/receiving", headers=team.headers)).json()["data"][0]["id"]
    attachments = (await client.get(f"/emails/receiving/{email_id}/attachments", headers=team.headers)).json()
    attachment_id = attachments["data"][0]["id"]
    assert (await client.get("/emails/receiving", headers=other_team.headers)).json()["data"] == []
    for path in (f"/emails/receiving/{email_id}", f"/emails/receiving/{email_id}/attachments",
                 f"/emails/receiving/{email_id}/attachments/{attachment_id}"):
        response = await client.get(path, headers=other_team.headers)
        assert response.status_code == 404, path
    assert (await client.get(f"/emails/receiving/{email_id}")).status_code == 401


async def test_a_download_link_opens_only_its_own_attachment_and_only_unaltered(client, team, postgres, env,
                                                                               outside, dns_zone):
    name = await _receiving_domain(client, team, dns_zone)
    for _ in range(2):
        assert pipe_in(env, postgres, outside.message(f"support@{name}"), [f"support@{name}"]) == 0
    first, second = [e["id"] for e in (await client.get("/emails/receiving", headers=team.headers)).json()["data"]]
    link = (await client.get(f"/emails/receiving/{first}/attachments", headers=team.headers)).json()["data"][0]
    url = link["download_url"]
    token = url.split("token=", 1)[1]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for refused in (url.replace(token, tampered), url.replace(first, second), url.split("?")[0],
                    url.replace(f"/emails/receiving/{first}", f"/emails/{first}")):
        response = await client.get(refused)
        assert response.status_code in (403, 404), refused
        assert ATTACHMENT not in response.content
    assert (await client.get(url)).content == ATTACHMENT


async def test_received_mail_goes_when_its_teams_retention_ends(client, team, postgres, env, outside, dns_zone):
    name = await _receiving_domain(client, team, dns_zone)
    assert pipe_in(env, postgres, outside.message(f"support@{name}"), [f"support@{name}"]) == 0
    email_id = (await client.get("/emails/receiving", headers=team.headers)).json()["data"][0]["id"]
    postgres.psql(f"UPDATE received_emails SET created_at = now() - interval '31 days' WHERE id = '{email_id}'",
                  user="postyard_owner", database="postyard")
    worker = create_async_engine(postgres.url(roles.WORKER))
    try:
        assert await purge_expired_received(worker) >= 1
    finally:
        await worker.dispose()
    assert (await client.get(f"/emails/receiving/{email_id}", headers=team.headers)).status_code == 404


def test_postfix_routes_receiving_domains_to_the_receive_pipe_and_bounce_domains_to_the_bounce_pipe():
    from app.mailhost.postfix_maps import BounceDomain

    maps = render_maps([BounceDomain("send.a.test", "a.test", "opportunistic")], [], ["B.test"])
    assert maps[BOUNCE_DOMAINS] == "b.test b.test\nsend.a.test a.test\n"
    assert maps[BOUNCE_TRANSPORT] == f"b.test {RECEIVE_TRANSPORT_NEXTHOP}\nsend.a.test postyard-bounce:\n"


async def test_a_message_whose_headers_hold_nul_bytes_is_stored_without_them(client, team, postgres, env, outside,
                                                                             dns_zone):
    name = await _receiving_domain(client, team, dns_zone)
    raw = outside.message(f"support@{name}").replace(b"Subject: Invoice 42", b"Subject: Invoice\x00 42", 1)
    assert pipe_in(env, postgres, raw, [f"support@{name}"]) == 0
    item = (await client.get("/emails/receiving", headers=team.headers)).json()["data"][0]
    assert item["subject"] == "Invoice 42"


async def test_a_message_with_8bit_headers_is_stored_and_read(client, team, env, postgres, outside, dns_zone):
    name = await _receiving_domain(client, team, dns_zone)
    raw = outside.message(f"support@{name}").replace(b"Subject: Invoice 42", b"Subject: Invoice \xe9\xff", 1)
    assert pipe_in(env, postgres, raw, [f"support@{name}"]) == 0
    item = (await client.get("/emails/receiving", headers=team.headers)).json()["data"][0]
    one = await client.get(f"/emails/receiving/{item['id']}", headers=team.headers)
    assert one.status_code == 200 and one.json()["headers"]["Subject"] == "Invoice \ufffd\ufffd"


async def test_a_message_postfix_delivers_twice_is_stored_and_announced_once(client, team, env, postgres, outside,
                                                                           dns_zone, receiver, dispatcher):
    name = await _receiving_domain(client, team, dns_zone)
    await client.post("/webhooks", json={"endpoint": receiver.url, "events": ["email.received"]},
                      headers=team.headers)
    raw = outside.message(f"support@{name}")
    for _ in range(2):  # as after a pipe that stored the message but died before its exit status reached Postfix
        assert pipe_in(env, postgres, raw, [f"support@{name}"], queue_id="4QX1Y2Z3") == 0
    assert len((await client.get("/emails/receiving", headers=team.headers)).json()["data"]) == 1
    await deliver_all(dispatcher)
    assert len(receiver.requests) == 1


async def test_received_mail_pages_with_resends_cursors(client, team, env, postgres, outside, dns_zone):
    name = await _receiving_domain(client, team, dns_zone)
    for _ in range(3):
        assert pipe_in(env, postgres, outside.message(f"support@{name}"), [f"support@{name}"]) == 0
    newest_first = [e["id"] for e in (await client.get("/emails/receiving", headers=team.headers)).json()["data"]]
    first = (await client.get("/emails/receiving?limit=2", headers=team.headers)).json()
    after = (await client.get(f"/emails/receiving?limit=2&after={newest_first[1]}", headers=team.headers)).json()
    before = (await client.get(f"/emails/receiving?limit=2&before={newest_first[2]}", headers=team.headers)).json()
    assert ([e["id"] for e in first["data"]], first["has_more"]) == (newest_first[:2], True)
    assert ([e["id"] for e in after["data"]], after["has_more"]) == (newest_first[2:], False)
    assert ([e["id"] for e in before["data"]], before["has_more"]) == (newest_first[:2], False)
    both = await client.get(f"/emails/receiving?after={newest_first[0]}&before={newest_first[2]}",
                            headers=team.headers)
    assert both.status_code == 422


async def test_a_message_with_many_from_addresses_gets_no_dmarc_lookups_and_a_permerror(
        client, team, env, postgres, outside, dns_zone):
    name = await _receiving_domain(client, team, dns_zone)
    authors = ", ".join(f"a{i}@d{i}.unpublished.test" for i in range(500))
    raw = outside.message(f"support@{name}").replace(b"From: Alice", f"From: {authors}, Alice".encode(), 1)
    started = time.monotonic()
    assert pipe_in(env, postgres, raw, [f"support@{name}"]) == 0
    assert time.monotonic() - started < 30
    item = (await client.get("/emails/receiving", headers=team.headers)).json()["data"][0]
    assert item["authentication"]["dmarc"] == "permerror"


async def test_a_providers_signature_before_the_authors_does_not_hide_the_authors_pass(
        client, team, env, postgres, outside, dns_zone):
    name = await _receiving_domain(client, team, dns_zone)
    signed = outside.message(f"support@{name}")
    provider = Sender(dns_zone)  # another domain's key, over a message it did not write: this signature fails
    foreign = dkim.sign(signed, b"sel", provider.domain.encode(), provider.key, include_headers=[b"From"])
    tampered = foreign.replace(b"b=", b"b=AAAA", 1)
    assert pipe_in(env, postgres, tampered + signed, [f"support@{name}"], sender=f"alice@{outside.domain}") == 0
    item = (await client.get("/emails/receiving", headers=team.headers)).json()["data"][0]
    assert (item["authentication"]["dkim"], item["authentication"]["dmarc"]) == ("pass", "pass")
    assert f"header.d={outside.domain}" in item["authentication"]["results"]


async def test_arguments_that_are_not_utf8_are_stored_replaced(client, team, env, postgres, outside, dns_zone):
    name = await _receiving_domain(client, team, dns_zone)
    assert pipe_in(env, postgres, outside.message(f"support@{name}"), [f"support@{name}"],
                   helo=b"mx.\xff\xfe.test") == 0
    item = (await client.get("/emails/receiving", headers=team.headers)).json()["data"][0]
    assert item["subject"] == "Invoice 42"
