"""Postfix log lines and DSN/ARF reports become events; a report suppresses only recipients of the email it names."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from test_emails import message
from test_operations import METRICS_TOKEN, configured_client  # noqa: F401 - a fixture
from test_outbox import db, drain

from app.domain.events.ingest import apply_report, ingest_lines
from app.domain.events.postfix_log import Accepted, Delivery, MessageIdSeen, parse_line

SAMPLES = Path(__file__).parent / "samples"
QID = "3F2A81C0B2"
LOG = {
    "sent": f"Nov 21 20:00:03 mail postfix/smtp[12345]: {QID}: to=<bob@example.org>, "
            "relay=mx.example.org[203.0.113.25]:25, delay=1.2, delays=0.05/0.01/0.6/0.54, dsn=2.0.0, "
            "status=sent (250 2.0.0 OK 1795291203 q7-20020a05)",
    "deferred": f"2026-11-21T20:00:03.512301+00:00 mail postfix/smtp[12346]: {QID}: to=<bob@example.org>, "
                "relay=none, delay=30, delays=0.03/0/30/0, dsn=4.4.1, status=deferred (connect to "
                "mx.example.org[203.0.113.25]:25: Connection timed out)",
    "bounced": f"Nov 21 20:00:03 mail postfix/smtp[12347]: {QID}: to=<Bob@example.org>, "
               "orig_to=<bob@example.org>, relay=mx.example.org[203.0.113.25]:25, delay=0.9, "
               "delays=0.04/0/0.5/0.36, dsn=5.1.1, status=bounced (host mx.example.org[203.0.113.25] said: "
               "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown (in reply to RCPT TO command))",
    "cleanup": f"Nov 21 20:00:01 mail postfix/cleanup[2201]: {QID}: message-id=<abc@d.example.test>",
    "qmgr": f"Nov 21 20:00:01 mail postfix/qmgr[901]: {QID}: from=<bounce+ab@send.d.example.test>, size=1834, "
            "nrcpt=1 (queue active)",
    "submission": f"Nov 21 20:00:01 mail postfix/submission/smtpd[3101]: {QID}: client=localhost[127.0.0.1], "
                  "sasl_method=PLAIN, sasl_username=acme",
    "removed": f"Nov 21 20:00:04 mail postfix/qmgr[901]: {QID}: removed",
}


@pytest.mark.parametrize("name,expected", [
    ("sent", Delivery(QID, "bob@example.org", "sent", "2.0.0", "mx.example.org[203.0.113.25]:25",
                      "250 2.0.0 OK 1795291203 q7-20020a05")),
    ("cleanup", MessageIdSeen(QID, "<abc@d.example.test>")),
    ("qmgr", Accepted(QID, "bounce+ab@send.d.example.test")),
    ("submission", None),
    ("removed", None),
])
def test_postfix_log_lines_parse_into_their_records(name, expected):
    assert parse_line(LOG[name]) == expected


@pytest.mark.parametrize("name,event,hard", [
    ("sent", "delivered", False), ("deferred", "delivery_delayed", False), ("bounced", "bounced", True)])
def test_delivery_statuses_map_to_events(name, event, hard):
    record = parse_line(LOG[name])
    assert record.event == event and record.hard_bounce is hard


async def _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt: str) -> tuple[str, str]:
    email_id = (await client.post("/emails", json=message(sender, to=[rcpt]), headers=team.headers)).json()["id"]
    await drain(settings, owner_engine)
    return email_id, db(postgres, f"SELECT queue_id FROM emails WHERE id = '{email_id}'")


async def test_a_delivery_log_line_marks_the_email_delivered(client, team, sender, settings, owner_engine,
                                                             smtp_sink, postgres):
    email_id, qid = await _sent_email(client, team, sender, settings, owner_engine, postgres, "bob@example.org")
    applied = await ingest_lines(owner_engine, [LOG["sent"].replace(QID, qid), LOG["submission"]])
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    assert applied == 1 and fetched["last_event"] == "delivered"
    assert fetched["events"][-1]["recipient"] == "bob@example.org"


async def test_a_queue_id_is_matched_only_on_the_mail_host_that_submitted_the_email(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    """Two mail hosts' Postfixes may give the same queue id: another host's lines change nothing of this email."""
    email_id, qid = await _sent_email(client, team, sender, settings, owner_engine, postgres, "bob@example.org")
    other = "mail2.other.test"
    row = f"FROM emails WHERE id = '{email_id}'"
    message_id, envelope_from = db(postgres, f"SELECT message_id || ' ' || envelope_from {row}").split()
    cleanup = LOG["cleanup"].replace(QID, "0TH3RQ1D").replace("<abc@d.example.test>", message_id)
    accepted_and_sent = [LOG["qmgr"].replace(QID, qid).replace("bounce+ab@send.d.example.test", envelope_from),
                         LOG["sent"].replace(QID, qid)]

    db(postgres, f"UPDATE emails SET state = 'sending', queue_id = NULL, mta_accepted = false WHERE id = '{email_id}'")
    assert await ingest_lines(owner_engine, [cleanup], mail_host=other) == 0
    assert db(postgres, f"SELECT coalesce(queue_id, 'none') {row}") == "none"

    db(postgres, f"UPDATE emails SET state = 'sent', queue_id = '{qid}' WHERE id = '{email_id}'")
    assert await ingest_lines(owner_engine, accepted_and_sent, mail_host=other) == 0
    assert db(postgres, f"SELECT mta_accepted || ' ' || last_event {row}") == "false sent"
    assert await ingest_lines(owner_engine, accepted_and_sent) == 2
    assert db(postgres, f"SELECT mta_accepted || ' ' || last_event {row}") == "true delivered"


async def test_a_hard_bounce_in_the_log_suppresses_the_recipient(client, team, sender, settings, owner_engine,
                                                                 smtp_sink, postgres):
    email_id, qid = await _sent_email(client, team, sender, settings, owner_engine, postgres, "bob@example.org")
    await ingest_lines(owner_engine, [LOG["deferred"].replace(QID, qid), LOG["bounced"].replace(QID, qid)])
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    suppression = (await client.get("/suppressions/bob@example.org", headers=team.headers)).json()
    assert [e["type"] for e in fetched["events"]][-2:] == ["delivery_delayed", "bounced"]
    assert suppression["reason"] == "hard_bounce" and suppression["origin"] == "bounce"
    assert suppression["source_id"] == email_id


async def test_hard_bounces_of_one_address_in_one_read_suppress_it_once_from_its_first_email(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    rcpt = f"gone{uuid.uuid4().hex[:6]}@example.org"
    first, first_qid = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    second, second_qid = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    bounce = LOG["bounced"].replace("Bob@example.org", rcpt).replace("bob@example.org", rcpt)
    applied = await ingest_lines(owner_engine, [bounce.replace(QID, first_qid), bounce.replace(QID, second_qid)])
    suppression = (await client.get(f"/suppressions/{rcpt}", headers=team.headers)).json()
    assert applied == 2 and suppression["source_id"] == first
    assert db(postgres, f"SELECT count(*) FROM suppressions WHERE email = '{rcpt}'") == "1"


def _sample(name: str, email_id: str, domain: str, rcpt: str, edits: dict[str, str] | None = None) -> bytes:
    """A sample report about the email, its placeholders filled; `edits` replace text before that."""
    text = (SAMPLES / name).read_text()
    for key, value in (edits or {}).items():
        assert key in text, key
        text = text.replace(key, value)
    for key, value in {"{EMAIL_HEX}": uuid.UUID(email_id).hex, "{EMAIL_ID}": email_id, "{DOMAIN}": domain,
                       "{RCPT}": rcpt}.items():
        text = text.replace(key, value)
    return text.replace("\n", "\r\n").encode()


def _bounce_pipe(env: dict[str, str], raw: bytes, recipient: str) -> int:
    return subprocess.run([sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))",
                           "bounce", recipient], input=raw, env={**os.environ, **env},
                          capture_output=True, timeout=60).returncode


async def test_a_dsn_piped_to_the_bounce_entry_point_records_the_bounce_and_suppresses(
        client, team, sender, settings, owner_engine, smtp_sink, postgres, env):
    rcpt = f"n{uuid.uuid4().hex[:8]}@example.org"
    email_id, _ = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    verp = f"bounce+{uuid.UUID(email_id).hex}@send.{sender}"
    code = _bounce_pipe(env, _sample("dsn_hard_bounce.eml", email_id, sender, rcpt), verp)
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    suppressed = await client.get(f"/suppressions/{rcpt}", headers=team.headers)
    bounce = fetched["events"][-1]
    assert code == 0 and fetched["last_event"] == "bounced" and bounce["detail"]["status"] == "5.1.1"
    assert bounce["detail"]["type"] == "hard" and suppressed.json()["reason"] == "hard_bounce"
    assert _ignored(postgres, email_id) == []


async def test_the_same_bounce_from_the_log_and_a_dsn_is_one_event(client, team, sender, settings, owner_engine,
                                                                   smtp_sink, postgres):
    rcpt = "bob@example.org"
    email_id, qid = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    await ingest_lines(owner_engine, [LOG["bounced"].replace(QID, qid)])
    await apply_report(owner_engine, _sample("dsn_hard_bounce.eml", email_id, sender, rcpt))
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    assert [e["type"] for e in fetched["events"]].count("bounced") == 1


async def test_a_delay_dsn_records_delivery_delayed_without_suppressing(client, team, sender, settings,
                                                                         owner_engine, smtp_sink, postgres):
    rcpt = f"s{uuid.uuid4().hex[:8]}@example.org"
    email_id, _ = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    await apply_report(owner_engine, _sample("dsn_delayed.eml", email_id, sender, rcpt))
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    suppressed = await client.get(f"/suppressions/{rcpt}", headers=team.headers)
    assert fetched["last_event"] == "delivery_delayed" and suppressed.status_code == 404


async def test_an_arf_complaint_records_complained_and_suppresses(client, team, sender, settings, owner_engine,
                                                                  smtp_sink, postgres):
    rcpt = f"c{uuid.uuid4().hex[:8]}@example.org"
    email_id, _ = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    outcome = await apply_report(owner_engine, _sample("arf_complaint.eml", email_id, sender, rcpt))
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    suppression = (await client.get(f"/suppressions/{rcpt}", headers=team.headers)).json()
    assert outcome.report.feedback_type == "abuse" and fetched["last_event"] == "complained"
    assert suppression["reason"] == "complaint" and suppression["origin"] == "complaint"


async def test_a_message_that_is_no_report_is_accepted_and_ignored(env):
    raw = b"From: someone@example.org\r\nTo: bounce+00@send.example.test\r\nSubject: out of office\r\n\r\nAway.\r\n"
    assert _bounce_pipe(env, raw, "bounce+00@send.example.test") == 0


async def test_the_log_follower_reads_lines_on_stdin(client, team, sender, settings, owner_engine, smtp_sink,
                                                     postgres, env):
    email_id, qid = await _sent_email(client, team, sender, settings, owner_engine, postgres, "bob@example.org")
    lines = "\n".join([LOG["removed"], LOG["sent"].replace(QID, qid)]) + "\n"
    result = subprocess.run([sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))",
                             "follow-postfix-log"], input=lines.encode(), env={**os.environ, **env},
                            capture_output=True, timeout=60)
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    assert result.returncode == 0 and fetched["last_event"] == "delivered"


async def test_the_bounce_pipe_asks_postfix_to_retry_when_the_database_is_unreachable(env, client, team, sender,
                                                                                       settings, owner_engine,
                                                                                       smtp_sink, postgres):
    from api_support import free_port

    rcpt = f"n{uuid.uuid4().hex[:8]}@example.org"
    email_id, _ = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    down = {**env, "POSTYARD_SERVICE_DATABASE_URL": f"postgresql+asyncpg://postyard_owner@127.0.0.1:{free_port()}/x"}
    raw = _sample("dsn_hard_bounce.eml", email_id, sender, rcpt)
    assert _bounce_pipe(down, raw, f"bounce+{uuid.UUID(email_id).hex}@send.{sender}") == 75


async def test_the_bounce_pipe_asks_postfix_to_retry_after_any_unexpected_failure(env, client, team, sender,
                                                                                 settings, owner_engine,
                                                                                 smtp_sink, postgres):
    rcpt = f"n{uuid.uuid4().hex[:8]}@example.org"
    email_id, _ = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    # A role that may read none of the tables: every query fails, though the database answers.
    refused = {**env, "POSTYARD_SERVICE_DATABASE_URL": postgres.url("postyard_dovecot")}
    raw = _sample("dsn_hard_bounce.eml", email_id, sender, rcpt)
    assert _bounce_pipe(refused, raw, f"bounce+{uuid.UUID(email_id).hex}@send.{sender}") == 75
    assert (await client.get(f"/emails/{email_id}", headers=team.headers)).json()["last_event"] != "bounced"


# Reports must name the email (VERP address, returned Message-ID) and speak only for its recipients.

def _ignored(postgres, email_id: str | None = None, where: str = "") -> list[tuple[str, str, str]]:
    """(reason, reported addresses, team id) of the ignored reports about the email (or matching `where`)."""
    condition = where or f"email_id = '{email_id}'"
    rows = db(postgres, "SELECT reason, array_to_string(reported_addresses, ','), coalesce(team_id::text, '') "
                        f"FROM ignored_reports WHERE {condition} ORDER BY received_at")
    return [tuple(r.split("|")) for r in rows.splitlines() if r]


def _events(fetched: dict) -> list[tuple[str, str | None]]:
    return [(e["type"], e.get("recipient")) for e in fetched["events"]]


async def _state(client, team, email_id: str, *addresses: str) -> tuple[dict, list[int]]:
    """The email as the API shows it, and the suppression lookup status of each address."""
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    return fetched, [(await client.get(f"/suppressions/{a}", headers=team.headers)).status_code for a in addresses]


def _verp(email_id: str, domain: str) -> str:
    return f"bounce+{uuid.UUID(email_id).hex}@send.{domain}"


@pytest.mark.parametrize("sample", ["dsn_hard_bounce.eml", "arf_complaint.eml"])
async def test_a_forged_report_naming_a_non_recipient_suppresses_nothing(client, team, sender, settings, owner_engine,
                                                                         smtp_sink, postgres, sample):
    rcpt, victim = f"r{uuid.uuid4().hex[:8]}@example.org", f"v{uuid.uuid4().hex[:8]}@example.org"
    email_id, _ = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    outcome = await apply_report(owner_engine, _sample(sample, email_id, sender, victim), _verp(email_id, sender))
    fetched, looked_up = await _state(client, team, email_id, victim, rcpt)
    assert outcome.ignored == "not_a_recipient" and outcome.applied == [] and looked_up == [404, 404]
    assert not {"bounced", "complained"} & {t for t, _ in _events(fetched)}
    assert _ignored(postgres, email_id) == [("not_a_recipient", victim, str(team.team_id))]


@pytest.mark.parametrize("sample", ["dsn_hard_bounce.eml", "arf_complaint.eml"])
async def test_a_report_whose_returned_message_id_differs_is_ignored(client, team, sender, settings, owner_engine,
                                                                     smtp_sink, postgres, sample):
    rcpt = f"m{uuid.uuid4().hex[:8]}@example.org"
    email_id, _ = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    raw = _sample(sample, email_id, sender, rcpt, {"Message-ID: <{EMAIL_ID}@{DOMAIN}>": "Message-ID: <other@x.test>"})
    outcome = await apply_report(owner_engine, raw, _verp(email_id, sender))
    fetched, looked_up = await _state(client, team, email_id, rcpt)
    assert outcome.ignored == "message_id_mismatch" and looked_up == [404]
    assert not {"bounced", "complained"} & {t for t, _ in _events(fetched)}
    assert _ignored(postgres, email_id) == [("message_id_mismatch", rcpt, str(team.team_id))]


@pytest.mark.parametrize("sample,event,reason", [("dsn_hard_bounce.eml", "bounced", "hard_bounce"),
                                                 ("arf_complaint.eml", "complained", "complaint")])
async def test_a_report_naming_the_email_and_its_recipient_still_suppresses(client, team, sender, settings,
                                                                            owner_engine, smtp_sink, postgres,
                                                                            sample, event, reason):
    rcpt = f"ok{uuid.uuid4().hex[:8]}@example.org"
    email_id, _ = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    outcome = await apply_report(owner_engine, _sample(sample, email_id, sender, rcpt.upper()),
                                 _verp(email_id, sender).upper())
    fetched, _ = await _state(client, team, email_id)
    suppression = (await client.get(f"/suppressions/{rcpt}", headers=team.headers)).json()
    assert outcome.ignored is None and outcome.applied == [rcpt] and (event, rcpt) in _events(fetched)
    assert suppression["reason"] == reason and _ignored(postgres, email_id) == []


async def test_a_dsn_naming_a_recipient_and_a_stranger_bounces_only_the_recipient(client, team, sender, settings,
                                                                                  owner_engine, smtp_sink, postgres):
    rcpt, other = f"a{uuid.uuid4().hex[:8]}@example.org", f"b{uuid.uuid4().hex[:8]}@example.org"
    stranger = f"s{uuid.uuid4().hex[:8]}@example.org"
    email_id = (await client.post("/emails", json=message(sender, to=[rcpt], cc=[other]),
                                  headers=team.headers)).json()["id"]
    await drain(settings, owner_engine)
    extra = (f"Final-Recipient: rfc822; {stranger}\nAction: failed\nStatus: 5.1.1\n\n"
             "Final-Recipient: rfc822; {RCPT}")
    raw = _sample("dsn_hard_bounce.eml", email_id, sender, rcpt, {"Final-Recipient: rfc822; {RCPT}": extra})
    outcome = await apply_report(owner_engine, raw, _verp(email_id, sender))
    fetched, looked_up = await _state(client, team, email_id, rcpt, stranger, other)
    assert outcome.applied == [rcpt] and looked_up == [200, 404, 404]
    assert [r for t, r in _events(fetched) if t == "bounced"] == [rcpt]
    assert _ignored(postgres, email_id) == [("not_a_recipient", stranger, str(team.team_id))]


async def test_a_dsn_whose_final_recipient_was_forwarded_bounces_its_original_recipient(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    rcpt = f"f{uuid.uuid4().hex[:8]}@example.org"
    email_id, _ = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    raw = _sample("dsn_hard_bounce.eml", email_id, sender, rcpt,
                  {"Final-Recipient: rfc822; {RCPT}": "Final-Recipient: rfc822; forwarded@elsewhere.example"})
    outcome = await apply_report(owner_engine, raw, _verp(email_id, sender))
    assert outcome.applied == [rcpt] and outcome.ignored is None


@pytest.mark.parametrize("case", ["other_emails_return_path", "other_domain", "other_x_postfix_sender"])
async def test_a_dsn_whose_verp_addresses_disagree_is_ignored(client, team, sender, settings, owner_engine,
                                                              smtp_sink, postgres, case):
    rcpt = f"d{uuid.uuid4().hex[:8]}@example.org"
    email_id, _ = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    other_id, _ = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    edits, sent_to = {}, _verp(email_id, sender)
    if case == "other_emails_return_path":
        edits = {"Return-Path: <bounce+{EMAIL_HEX}": f"Return-Path: <bounce+{uuid.UUID(other_id).hex}"}
    elif case == "other_x_postfix_sender":
        edits = {"X-Postfix-Sender: rfc822; bounce+{EMAIL_HEX}":
                 f"X-Postfix-Sender: rfc822; bounce+{uuid.UUID(other_id).hex}"}
    else:
        sent_to = sent_to.replace(f"@send.{sender}", "@send.elsewhere.example")
        edits = {"bounce+{EMAIL_HEX}@send.{DOMAIN}": "bounce+{EMAIL_HEX}@send.elsewhere.example"}
    outcome = await apply_report(owner_engine, _sample("dsn_hard_bounce.eml", email_id, sender, rcpt, edits), sent_to)
    _, looked_up = await _state(client, team, email_id, rcpt)
    assert outcome.ignored == "verp_mismatch" and looked_up == [404]
    reasons = _ignored(postgres, where=f"sent_to = '{sent_to.lower()}'")
    assert [r[0] for r in reasons] == ["verp_mismatch"]


async def test_a_report_to_a_verp_address_of_no_email_is_ignored(postgres, owner_engine, sender):
    missing = str(uuid.uuid4())
    rcpt = f"x{uuid.uuid4().hex[:8]}@example.org"
    outcome = await apply_report(owner_engine, _sample("dsn_hard_bounce.eml", missing, sender, rcpt),
                                 _verp(missing, sender))
    rows = _ignored(postgres, where=f"sent_to = '{_verp(missing, sender)}'")
    assert outcome.ignored == "unknown_email" and rows == [("unknown_email", rcpt, "")]


async def test_a_report_that_names_no_verp_address_is_ignored(postgres, owner_engine, client, team, sender, settings,
                                                              smtp_sink):
    rcpt = f"n{uuid.uuid4().hex[:8]}@example.org"
    email_id, _ = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    raw = _sample("dsn_hard_bounce.eml", email_id, sender, rcpt, {"bounce+{EMAIL_HEX}": "postmaster"})
    outcome = await apply_report(owner_engine, raw, f"postmaster@send.{sender}")
    _, looked_up = await _state(client, team, email_id, rcpt)
    rows = _ignored(postgres, where=f"sent_to = 'postmaster@send.{sender}'")
    assert outcome.ignored == "no_verp_address" and looked_up == [404] and rows == [("no_verp_address", rcpt, "")]


async def test_a_complaint_naming_no_recipient_suppresses_the_only_recipient(client, team, sender, settings,
                                                                            owner_engine, smtp_sink, postgres):
    rcpt = f"o{uuid.uuid4().hex[:8]}@example.org"
    email_id, _ = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    raw = _sample("arf_complaint.eml", email_id, sender, rcpt, {"Original-Rcpt-To: <{RCPT}>\n": ""})
    outcome = await apply_report(owner_engine, raw)
    _, looked_up = await _state(client, team, email_id, rcpt)
    assert outcome.applied == [rcpt] and looked_up == [200]


async def test_a_complaint_naming_no_recipient_of_an_email_with_several_is_ignored(client, team, sender, settings,
                                                                                   owner_engine, smtp_sink, postgres):
    rcpt, other = f"p{uuid.uuid4().hex[:8]}@example.org", f"q{uuid.uuid4().hex[:8]}@example.org"
    email_id = (await client.post("/emails", json=message(sender, to=[rcpt, other]), headers=team.headers)).json()["id"]
    await drain(settings, owner_engine)
    raw = _sample("arf_complaint.eml", email_id, sender, rcpt, {"Original-Rcpt-To: <{RCPT}>\n": ""})
    outcome = await apply_report(owner_engine, raw)
    _, looked_up = await _state(client, team, email_id, rcpt, other)
    assert outcome.ignored == "recipient_not_named" and looked_up == [404, 404]
    assert _ignored(postgres, email_id) == [("recipient_not_named", "", str(team.team_id))]


async def test_a_forged_dsn_piped_to_the_bounce_entry_point_is_accepted_recorded_and_changes_nothing(
        client, team, sender, settings, owner_engine, smtp_sink, postgres, env):
    rcpt, victim = f"e{uuid.uuid4().hex[:8]}@example.org", f"w{uuid.uuid4().hex[:8]}@example.org"
    email_id, _ = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    code = _bounce_pipe(env, _sample("dsn_hard_bounce.eml", email_id, sender, victim), _verp(email_id, sender))
    fetched, looked_up = await _state(client, team, email_id, victim)
    assert code == 0 and looked_up == [404] and fetched["last_event"] != "bounced"
    assert _ignored(postgres, email_id) == [("not_a_recipient", victim, str(team.team_id))]


async def test_ignored_reports_are_counted_by_reason_on_the_metrics_route(client, team, sender, settings,
                                                                         owner_engine, smtp_sink, postgres,
                                                                         configured_client):  # noqa: F811
    async def count() -> float:
        response = await configured_client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        prefix = 'postyard_reports_ignored_total{reason="not_a_recipient"} '
        return float(next((ln for ln in response.text.splitlines() if ln.startswith(prefix)), "x 0").split()[-1])

    rcpt, victim = f"g{uuid.uuid4().hex[:8]}@example.org", f"h{uuid.uuid4().hex[:8]}@example.org"
    email_id, _ = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    before = await count()
    await apply_report(owner_engine, _sample("dsn_hard_bounce.eml", email_id, sender, victim), _verp(email_id, sender))
    assert await count() == before + 1


async def test_a_team_sees_its_own_ignored_reports_and_no_one_elses(client, team, other_team, sender, settings,
                                                                    owner_engine, smtp_sink, postgres):
    rcpt, victim = f"i{uuid.uuid4().hex[:8]}@example.org", f"j{uuid.uuid4().hex[:8]}@example.org"
    email_id, _ = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    await apply_report(owner_engine, _sample("dsn_hard_bounce.eml", email_id, sender, victim), _verp(email_id, sender))
    seen = {}
    for who in (team, other_team):
        seen[who.team_id] = postgres.psql(
            f"BEGIN; SELECT set_config('app.team_id', '{who.team_id}', true); "
            f"SELECT count(*) FROM ignored_reports WHERE email_id = '{email_id}'; COMMIT;",
            user="postyard_app", database="postyard").split()
    assert seen[team.team_id][-2] == "1" and seen[other_team.team_id][-2] == "0"  # the count, before COMMIT


async def test_a_valid_dsn_with_nul_and_undecodable_bytes_in_its_diagnostic_still_bounces(
        client, team, sender, settings, owner_engine, smtp_sink, postgres):
    rcpt = f"k{uuid.uuid4().hex[:8]}@example.org"
    email_id, _ = await _sent_email(client, team, sender, settings, owner_engine, postgres, rcpt)
    raw = _sample("dsn_hard_bounce.eml", email_id, sender, rcpt).replace(
        b"Diagnostic-Code: smtp; 550", b"Diagnostic-Code: smtp; \x00\xff\xfe bo\xc3\xaete 550")
    outcome = await apply_report(owner_engine, raw, _verp(email_id, sender))
    fetched, looked_up = await _state(client, team, email_id, rcpt)
    bounce = fetched["events"][-1]
    assert outcome.applied == [rcpt] and looked_up == [200] and bounce["detail"]["status"] == "5.1.1"
    assert "\x00" not in bounce["detail"]["diagnostic"] and " 550 5.1.1 " in bounce["detail"]["diagnostic"]


async def test_ignored_reports_are_purged_after_ninety_days_and_their_totals_stay(postgres, owner_engine, sender):
    from app.domain.events.ignored import purge_ignored_reports

    missing = str(uuid.uuid4())
    await apply_report(owner_engine, _sample("dsn_hard_bounce.eml", missing, sender, "old@example.org"),
                       _verp(missing, sender))
    where = f"sent_to = '{_verp(missing, sender)}'"
    db(postgres, f"UPDATE ignored_reports SET received_at = now() - interval '91 days' WHERE {where}")
    total = db(postgres, "SELECT count FROM ignored_report_totals WHERE reason = 'unknown_email'")
    purged = await purge_ignored_reports(owner_engine)
    assert purged >= 1 and _ignored(postgres, where=where) == []
    assert db(postgres, "SELECT count FROM ignored_report_totals WHERE reason = 'unknown_email'") == total
