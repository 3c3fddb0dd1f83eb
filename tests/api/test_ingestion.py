"""Delivery results from Postfix's log and from DSN/ARF reports become events; hard bounces and complaints suppress."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from app.domain.events.ingest import apply_report, ingest_lines
from app.domain.events.postfix_log import Accepted, Delivery, MessageIdSeen, parse_line
from test_emails import message
from test_outbox import db, drain

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


async def test_a_hard_bounce_in_the_log_suppresses_the_recipient(client, team, sender, settings, owner_engine,
                                                                 smtp_sink, postgres):
    email_id, qid = await _sent_email(client, team, sender, settings, owner_engine, postgres, "bob@example.org")
    await ingest_lines(owner_engine, [LOG["deferred"].replace(QID, qid), LOG["bounced"].replace(QID, qid)])
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    suppression = (await client.get("/suppressions/bob@example.org", headers=team.headers)).json()
    assert [e["type"] for e in fetched["events"]][-2:] == ["delivery_delayed", "bounced"]
    assert suppression["reason"] == "hard_bounce" and suppression["origin"] == "bounce"
    assert suppression["source_id"] == email_id


def _sample(name: str, email_id: str, domain: str, rcpt: str) -> bytes:
    text = (SAMPLES / name).read_text()
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
    report = await apply_report(owner_engine, _sample("arf_complaint.eml", email_id, sender, rcpt))
    fetched = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    suppression = (await client.get(f"/suppressions/{rcpt}", headers=team.headers)).json()
    assert report.feedback_type == "abuse" and fetched["last_event"] == "complained"
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
    down = {**env, "POSTYARD_WORKER_DATABASE_URL": f"postgresql+asyncpg://postyard_owner@127.0.0.1:{free_port()}/x"}
    raw = _sample("dsn_hard_bounce.eml", email_id, sender, rcpt)
    assert _bounce_pipe(down, raw, f"bounce+{uuid.UUID(email_id).hex}@send.{sender}") == 75
