"""The SMTP intake service (Postfix's before-queue proxy for 465/587) against real PostgreSQL: a
submitted message becomes an email with events and webhooks, or gets a 5xx/4xx with a reason."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from aiosmtpd.smtp import Envelope
from conftest import FAIL_AT_COMMIT, FAIL_AT_INSERT
from test_outbox import db, drain

from app.config import Settings
from app.db.engines import create_engine
from app.domain.emails.intake import without_header
from app.mailhost.smtp_intake import CONNECTIONS, FAILED, TEMPORARY_FAILURE, IntakeHandler, serve


@asynccontextmanager
async def running_intake(settings: Settings) -> AsyncIterator[Path]:
    """The intake server on a unix socket of its own, as Postfix reaches it."""
    path = Path(tempfile.mkdtemp(prefix="postyard-intake-")) / "smtp.sock"
    stop = asyncio.Event()
    task = asyncio.create_task(serve(path, settings, stop))
    try:
        while not path.exists():
            await asyncio.sleep(0.05)
        yield path
    finally:
        stop.set()
        await task


@pytest.fixture
async def intake(settings: Settings) -> AsyncIterator[Path]:
    async with running_intake(settings) as path:
        yield path


def _message(sender: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = headers.pop("From", f"Shop <orders@{sender}>")
    message["To"] = headers.pop("To", "buyer@example.org")
    message["Subject"] = headers.pop("Subject", "Your order")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Thanks for your order.\n")
    return message


async def _submit(path: Path, mail_from: str, rcpt_to: list[str], message: EmailMessage,
                  mail_options: tuple[str, ...] = (), rcpt_options: tuple[str, ...] = ()) -> tuple[int, str]:
    """One SMTP transaction over the unix socket, as Postfix's proxy client runs it; DATA's (code, text)."""
    client = aiosmtplib.SMTP(socket_path=str(path))
    await client.connect()
    try:
        await client.ehlo(hostname="mail.test")
        await client.mail(mail_from, options=list(mail_options))
        for rcpt in rcpt_to:
            await client.rcpt(rcpt, options=list(rcpt_options))
        try:
            response = await client.data(message.as_bytes())
        except aiosmtplib.SMTPResponseException as refused:
            return refused.code, refused.message
        return response.code, response.message
    finally:
        await client.quit()


async def test_a_submitted_message_becomes_an_email_with_events(
        intake, client, team, sender, settings, owner_engine, smtp_sink, postgres):
    code, reply = await _submit(intake, f"orders@{sender}", ["buyer@example.org", "audit@example.org"],
                                      _message(sender, Message_ID=f"<order-{uuid.uuid4().hex}@{sender}>"),
                                      ("BODY=8BITMIME", "AUTH=<>"), ("NOTIFY=NEVER",))
    assert code == 250 and reply.startswith("2.0.0 Ok: queued as ")
    email_id = reply.rsplit(" ", 1)[1]
    email = (await client.get(f"/emails/{email_id}", headers=team.headers)).json()
    assert email["from"] == f"Shop <orders@{sender}>" and email["to"] == ["buyer@example.org"]
    assert email["bcc"] == ["audit@example.org"] and email["subject"] == "Your order"
    assert email["text"] == "Thanks for your order.\n" and email["last_event"] == "queued"

    await drain(settings, owner_engine)
    received = smtp_sink.for_message_id(email["message_id"])
    assert len(received) == 1
    assert received[0].mail_from == f"bounce+{uuid.UUID(email_id).hex}@send.{sender}"
    assert sorted(received[0].rcpt_tos) == ["audit@example.org", "buyer@example.org"]
    assert b"Thanks for your order." in received[0].content
    assert db(postgres, f"SELECT string_agg(type, ',' ORDER BY seq) FROM email_events "
                        f"WHERE email_id = '{email_id}'") == "queued,sent"


async def test_a_message_without_message_id_or_date_gets_them(intake, client, team, sender, postgres):
    message = _message(sender)
    code, reply = await _submit(intake, f"orders@{sender}", ["buyer@example.org"], message)
    email_id = reply.rsplit(" ", 1)[1]
    mime = db(postgres, f"SELECT convert_from(mime, 'UTF8') FROM emails WHERE id = '{email_id}'")
    assert code == 250 and f"Message-ID: <{email_id}@{sender}>" in mime and "Date: " in mime


async def test_a_message_id_already_in_use_is_replaced(intake, sender, postgres):
    taken = f"<same-{uuid.uuid4().hex}@{sender}>"
    first = await _submit(intake, f"orders@{sender}", ["a@example.org"], _message(sender, Message_ID=taken))
    second = await _submit(intake, f"orders@{sender}", ["b@example.org"], _message(sender, Message_ID=taken))
    second_id = second[1].rsplit(" ", 1)[1]
    ids = db(postgres, f"SELECT message_id FROM emails WHERE id IN ('{first[1].rsplit(' ', 1)[1]}', '{second_id}') "
                       f"ORDER BY created_at")
    mime = db(postgres, f"SELECT convert_from(mime, 'UTF8') FROM emails WHERE id = '{second_id}'")
    assert ids.splitlines() == [taken, f"<{second_id}@{sender}>"]
    assert mime.count("Message-ID:") == 1


async def test_suppressed_recipients_are_left_out(intake, client, team, sender, postgres):
    blocked = f"gone{uuid.uuid4().hex[:6]}@example.org"
    await client.post("/suppressions", json={"email": blocked}, headers=team.headers)
    _, reply = await _submit(intake, f"orders@{sender}", [blocked], _message(sender, To=blocked))
    email = (await client.get(f"/emails/{reply.rsplit(' ', 1)[1]}", headers=team.headers)).json()
    assert email["last_event"] == "suppressed"
    assert db(postgres, f"SELECT state FROM emails WHERE id = '{email['id']}'") == "suppressed"


@pytest.mark.parametrize(("mail_from", "from_header", "expected"), [
    ("orders@{unverified}", "orders@{unverified}", "550 5.7.1 The {unverified} domain is not verified"),
    ("orders@{sender}", "ceo@bank.example", "550 5.7.1 The From address's domain (bank.example) must be"),
    ("orders@{sender}", "undisclosed-recipients:;", "554 5.6.0 The message needs a From header"),
])
async def test_a_message_the_platform_will_not_send_is_refused_with_a_reason(
        intake, sender, postgres, mail_from, from_header, expected):
    names = {"sender": sender, "unverified": f"u{uuid.uuid4().hex[:8]}.example.test"}
    count = db(postgres, "SELECT count(*) FROM emails")
    code, reply = await _submit(intake, mail_from.format(**names), ["buyer@example.org"],
                                      _message(sender, From=from_header.format(**names)))
    assert f"{code} {reply}".startswith(expected.format(**names))
    assert db(postgres, "SELECT count(*) FROM emails") == count


@pytest.fixture
async def handler(settings: Settings) -> AsyncIterator[IntakeHandler]:
    engine = create_engine(settings.system_database_url, settings, "postyard-smtp-intake", pool_size=CONNECTIONS,
                           max_overflow=0)
    yield IntakeHandler(engine, settings)
    await engine.dispose()


async def _hand_over(handler: IntakeHandler, sends: list[tuple[str, EmailMessage]]) -> list[str]:
    """DATA of each (envelope sender, message) handed over in one turn of the loop, as concurrent sessions
    reach it: one group. Each one's reply."""
    def envelope(mail_from: str, message: EmailMessage) -> Envelope:
        e = Envelope()
        e.mail_from, e.rcpt_tos, e.original_content = (
            mail_from, ["buyer@example.org"], message.as_bytes(policy=message.policy.clone(linesep="\r\n")))
        return e

    return list(await asyncio.gather(*(handler.handle_DATA(None, None, envelope(f, m))  # type: ignore[arg-type]
                                       for f, m in sends)))


def _stored(postgres, replies: list[str]) -> set[str]:
    ids = [r.rsplit(" ", 1)[1] for r in replies if r.startswith("250 ")]
    listed = ",".join(f"'{i}'" for i in ids) or "NULL"
    return set(db(postgres, f"SELECT id FROM emails WHERE id::text IN ({listed})").split())


async def test_a_refused_message_in_a_group_gets_its_own_reply_and_the_others_are_stored_in_one_commit(
        handler, sender, postgres, commits):
    unverified = f"u{uuid.uuid4().hex[:8]}.example.test"
    sends = [(f"orders@{sender}", _message(sender))] * 2 + [(f"orders@{unverified}", _message(unverified))] + \
        [(f"orders@{sender}", _message(sender))] * 2
    commits.clear()
    replies = await _hand_over(handler, sends)
    assert replies[2] == f"550 5.7.1 The {unverified} domain is not verified"
    assert all(r.startswith("250 2.0.0 Ok: queued as ") for r in replies[:2] + replies[3:])
    assert len(_stored(postgres, replies)) == 4 and len(commits) == 1


async def test_an_unforeseen_error_of_one_message_fails_that_message_alone(handler, sender, postgres, failing_insert):
    sends = [(f"orders@{sender}", _message(sender)), (f"orders@{sender}", _message(sender, Subject=FAIL_AT_INSERT)),
             (f"orders@{sender}", _message(sender))]
    replies = await _hand_over(handler, sends)
    assert replies[1] == FAILED and all(r.startswith("250 2.0.0 Ok: queued as ") for r in replies[::2])
    assert len(_stored(postgres, replies)) == 2


async def test_a_quota_admits_the_first_messages_of_a_group_and_defers_the_rest(handler, team, sender, postgres):
    db(postgres, f"UPDATE teams SET daily_quota = 2 WHERE id = '{team.team_id}'")
    replies = await _hand_over(handler, [(f"orders@{sender}", _message(sender))] * 4)
    assert [r[:9] for r in replies] == ["250 2.0.0"] * 2 + ["450 4.7.1"] * 2
    assert len(_stored(postgres, replies)) == 2
    assert db(postgres, f"SELECT sent FROM team_send_counters WHERE team_id = '{team.team_id}' AND period = 'day'") \
        == "2"


async def test_a_failed_commit_is_a_temporary_failure_for_every_message_of_its_group(
        handler, sender, postgres, failing_commit):
    sends = [(f"orders@{sender}", _message(sender)), (f"orders@{sender}", _message(sender, Subject=FAIL_AT_COMMIT)),
             (f"orders@{sender}", _message(sender))]
    count = db(postgres, "SELECT count(*) FROM emails")
    assert await _hand_over(handler, sends) == [TEMPORARY_FAILURE] * 3
    assert db(postgres, "SELECT count(*) FROM emails") == count


async def test_an_unreachable_database_is_a_temporary_failure(sender):
    unreachable = Settings.from_env({"POSTYARD_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"})
    async with running_intake(unreachable) as path:
        code, reply = await _submit(path, f"orders@{sender}", ["buyer@example.org"], _message(sender))
    assert (code, reply.split(" ")[0]) == (451, "4.3.0")


def test_without_header_drops_every_line_of_the_field_and_keeps_the_body():
    raw = b"Subject: hi\r\nMessage-ID:\r\n <a@b>\r\nTo: x@y\r\n\r\nMessage-ID: body line\r\n"
    assert without_header(raw, "message-id") == b"Subject: hi\r\nTo: x@y\r\n\r\nMessage-ID: body line\r\n"


async def test_a_burst_of_submissions_shares_transactions_on_one_kept_connection(intake, sender, postgres):
    async def burst() -> list[tuple[int, str]]:
        return await asyncio.gather(*(_submit(intake, f"orders@{sender}", ["buyer@example.org"], _message(sender))
                                      for _ in range(16)))

    def backends() -> set[str]:
        return set(postgres.psql("SELECT pid FROM pg_stat_activity WHERE application_name = 'postyard-smtp-intake'",
                                 database="postyard").split())

    first = await burst()
    kept = backends()
    second = await burst()
    assert all(code == 250 for code, _ in first + second)
    assert len(kept) == CONNECTIONS and backends() == kept  # none closed and opened again
    listed = ",".join(f"'{reply.rsplit(' ', 1)[1]}'" for _, reply in first + second)
    transactions = int(db(postgres, "SELECT count(DISTINCT xmin::text) FROM email_events "
                                    f"WHERE type = 'queued' AND email_id IN ({listed})"))
    assert transactions < 16  # each answered after a commit shared with other submissions
