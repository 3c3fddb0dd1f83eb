"""One set of rules for mail from `POST /emails` and from SMTP submission: no header can be injected, no
second From or Subject, no reserved header, at most 50 recipients. Over the API a broken rule is a 422 that
names the field; over SMTP a 5xx with an enhanced status code; either way nothing is stored."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_outbox import db
from test_smtp_intake import running_intake

from app.domain.emails.mime import render
from app.domain.emails.rules import header_fields
from app.domain.emails.schemas import SendEmail
from app.domain.emails.validation import Draft, draft_from_request
from app.lib.api_error import ApiError

# Every character that ends a line somewhere: CR, LF, Python's compat32 folding (VT, FF, FS, GS, RS),
# str.splitlines (NEL, LS, PS); and other controls that have no place in a header.
LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
CONTROLS = LINE_BREAKS + "\x00\x01\x1f\x7f\x9f"


@pytest.fixture
async def intake(settings):
    """The SMTP intake on a unix socket of its own, as Postfix reaches it."""
    async with running_intake(settings) as path:
        yield path


def header_names(message: bytes) -> list[str]:
    """The field names of a message's top-level header block, read line by line as a receiver would."""
    head = message.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    return [line.split(":", 1)[0].strip() for line in head.split("\r\n") if line[:1] not in (" ", "\t")]


def stored_count(postgres, sender: str) -> int:
    return int(db(postgres, f"SELECT count(*) FROM emails e JOIN domains d ON d.id = e.domain_id "
                            f"WHERE d.name = '{sender}'"))


def stored_mime(postgres, email_id: str) -> bytes:
    return bytes.fromhex(db(postgres, f"SELECT encode(mime, 'hex') FROM emails WHERE id = '{email_id}'"))


def api_body(sender: str, **change: object) -> dict:
    return {"from": f"Shop <orders@{sender}>", "to": ["buyer@example.org"], "subject": "Your order",
            "text": "Thanks.", **change}


def smtp_message(sender: str, *lines: str, head: str | None = None, body: bytes = b"Thanks.\r\n") -> bytes:
    """A CRLF message: From, To and Subject (unless `head` replaces them), then `lines`, then the body."""
    fields = [head] if head is not None else [f"From: Shop <orders@{sender}>", "To: buyer@example.org",
                                              "Subject: Your order"]
    return "\r\n".join([*fields, *lines]).encode() + b"\r\n\r\n" + body


async def smtp_data(path: Path, mail_from: str, recipients: list[str], content: bytes) -> str:
    """One transaction on the intake's socket as Postfix's proxy client runs it, with `content` sent byte
    for byte (dot-stuffed only); returns the reply to the end of DATA."""
    reader, writer = await asyncio.open_unix_connection(str(path))

    async def reply() -> str:
        while (line := await reader.readline())[3:4] == b"-":
            pass
        return line.decode().rstrip("\r\n")

    try:
        await reply()
        for command in ["EHLO mail.test", f"MAIL FROM:<{mail_from}>", *(f"RCPT TO:<{r}>" for r in recipients),
                        "DATA"]:
            writer.write(command.encode() + b"\r\n")
            await reply()
        writer.write(re.sub(rb"(?m)^\.", b"..", content) + b".\r\n")
        answer = await reply()
        writer.write(b"QUIT\r\n")
        return answer
    finally:
        writer.close()


# --- each rule, over the API -------------------------------------------------------------------------

FIELDS = {  # field named in the reason: the request's change, given a bad character and the sending domain
    "subject": lambda bad, _: {"subject": f"Hi{bad}Bcc: victim@example.org"},
    "from": lambda bad, sender: {"from": f"Shop{bad}Bcc: victim@example.org <orders@{sender}>"},
    "to": lambda bad, _: {"to": [f"Buyer{bad}From : ceo@bank.example <buyer@example.org>"]},
    "cc": lambda bad, _: {"cc": [f"Copy{bad}X: y <copy@example.org>"]},
    "bcc": lambda bad, _: {"bcc": [f"Hidden{bad}X: y <hidden@example.org>"]},
    "reply_to": lambda bad, _: {"reply_to": f"Desk{bad}X: y <desk@example.org>"},
    "X-Note": lambda bad, _: {"headers": {"X-Note": f"a{bad}Bcc: victim@example.org"}},
    "tags[0].name": lambda bad, _: {"tags": [{"name": f"k{bad}", "value": "v"}]},
    "tags[0].value": lambda bad, _: {"tags": [{"name": "k", "value": f"v{bad}"}]},
    "attachments[0].filename": lambda bad, _: {"attachments": [
        {"filename": f"a{bad}Bcc: x.txt", "content": base64.b64encode(b"hello").decode()}]},
}


@pytest.mark.parametrize("field", FIELDS)
async def test_a_control_character_in_any_header_text_is_refused_with_422_naming_the_field(
        client, team, sender, postgres, field):
    before = stored_count(postgres, sender)
    answers = {}
    for character in CONTROLS:
        response = await client.post("/emails", json=api_body(sender, **FIELDS[field](character, sender)),
                                     headers=team.headers)
        answers[f"U+{ord(character):04X}"] = (response.status_code, field in response.json()["message"])
    assert answers == {f"U+{ord(c):04X}": (422, True) for c in CONTROLS}
    assert stored_count(postgres, sender) == before


@pytest.mark.parametrize("subject", ["Hi\x0bFrom : ceo@bank", "Hi\x0bBcc: x"])
async def test_the_reported_subject_injections_answer_422_not_a_second_header_or_500(
        client, team, sender, postgres, subject):
    before = stored_count(postgres, sender)
    response = await client.post("/emails", json=api_body(sender, subject=subject), headers=team.headers)
    assert response.status_code == 422 and "U+000B" in response.json()["message"]
    assert stored_count(postgres, sender) == before


@pytest.mark.parametrize(("change", "reason"), [
    ({"headers": {"X-Note\n": "x"}}, "not a valid header name"),
    ({"headers": {"X-Note": "a", "x-note": "b"}}, "each header may be set once"),
    ({"headers": {"From": "ceo@bank.example"}}, "From may not be set"),
    ({"headers": {"Subject": "again"}}, "Subject may not be set"),
    ({"headers": {"Return-Path": "<x@example.org>"}}, "Return-Path header may not be set"),
    ({"headers": {"X-Postyard-Team": "other"}}, "X-Postyard-Team header may not be set"),
    ({"attachments": [{"filename": "a.txt", "content": "aGk=", "content_type": "text/plain\nBcc: x"}]},
     "content_type must be type/subtype"),
    ({"to": [f"u{i}@example.org" for i in range(51)]}, "at most 50 recipients"),
])
async def test_a_forbidden_header_or_too_many_recipients_are_refused_with_422(
        client, team, sender, postgres, change, reason):
    before = stored_count(postgres, sender)
    response = await client.post("/emails", json=api_body(sender, **change), headers=team.headers)
    assert response.status_code == 422 and reason in response.json()["message"]
    assert stored_count(postgres, sender) == before


async def test_a_tab_is_header_text_and_is_sent(client, team, sender, postgres):
    response = await client.post("/emails", json=api_body(sender, subject="Order\t42", headers={"X-Note": "a\tb"}),
                                 headers=team.headers)
    assert response.status_code == 200
    fields = dict(header_fields(stored_mime(postgres, response.json()["id"])))
    assert fields["Subject"] == "Order\t42" and fields["X-Note"] == "a\tb"


# --- each rule, over SMTP ----------------------------------------------------------------------------

@pytest.mark.parametrize(("lines", "head", "expected"), [
    (["From: Boss <ceo@bank.example>"], None, "554 5.6.0 A message has exactly one From header, not 2"),
    (["From : ceo@bank.example"], None, "554 5.6.0 A message has exactly one From header, not 2"),
    ([], "To: buyer@example.org\r\nSubject: no sender", "554 5.6.0 A message has exactly one From header, not 0"),
    (["Subject: a second subject"], None, "554 5.6.0 A message has at most one subject header, not 2"),
    (["To: other@example.org"], None, "554 5.6.0 A message has at most one to header, not 2"),
    (["Content-Type: text/html"] * 2, None, "554 5.6.0 A message has at most one content-type header, not 2"),
    (["Return-Path: <ceo@bank.example>"], None, "550 5.7.1 The Return-Path header may not be set"),
    (["X-Postyard-Team: other"], None, "550 5.7.1 The X-Postyard-Team header may not be set"),
    (["DKIM-Signature: v=1; d=bank.example"], None, "550 5.7.1 The DKIM-Signature header may not be set"),
    (["X-Note: a\x0bFrom : ceo@bank.example"], None, "554 5.6.0 The X-Note header must not contain U+000B"),
    (["X-Note: a\rBcc: victim@example.org"], None, "554 5.6.0 The X-Note header must not contain U+000D"),
    (["X-Note: a\u2028Bcc: victim@example.org"], None, "554 5.6.0 The X-Note header must not contain U+2028"),
    (["X-Note: a\x85b"], None, "554 5.6.0 The X-Note header must not contain U+0085"),
    (["this line has no colon"], None, "554 5.6.0 A header line has no colon"),
    (["Subject: =?utf-8?q?Hi=0D=0ABcc:_victim@example.org?="], "From: Shop <orders@{sender}>",
     "554 5.6.0 The Subject header must not contain U+000D"),
    (["Message-ID: <"], None, "554 5.6.0 The message could not be parsed"),
])
async def test_a_message_breaking_a_header_rule_is_refused_over_smtp_with_an_enhanced_code(
        intake, sender, postgres, lines, head, expected):
    content = smtp_message(sender, *lines, head=None if head is None else head.format(sender=sender))
    before = stored_count(postgres, sender)
    reply = await smtp_data(intake, f"orders@{sender}", ["buyer@example.org"], content)
    assert reply.startswith(expected)
    assert stored_count(postgres, sender) == before


@pytest.mark.parametrize(("content", "expected"), [
    (b"From: Shop <orders@{sender}>\r\nSubject: caf\xe9\r\n\r\nlatin-1\r\n",
     "554 5.6.0 Header fields must be ASCII or UTF-8"),
    (b"From: Shop <orders@{sender}>\r\nSubject: hi\r\n\r\nnul \x00 in the body\r\n",
     "554 5.6.0 A message must not contain NUL characters"),
    (b"From: Shop <orders@{sender}>\r\nSubject: hi\r\nContent-Type: text/plain; charset=utf-8\r\n"
     b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"nul \x00 decoded") + b"\r\n",
     "554 5.6.0 The message's plain text must not contain NUL characters"),
], ids=["latin-1 header", "NUL", "decoded NUL"])
async def test_a_malformed_message_is_refused_with_554_5_6_0_not_451(intake, sender, postgres, content, expected):
    before = stored_count(postgres, sender)
    reply = await smtp_data(intake, f"orders@{sender}", ["buyer@example.org"],
                            content.replace(b"{sender}", sender.encode()))
    assert reply.startswith(expected)
    assert stored_count(postgres, sender) == before


async def test_more_than_50_recipients_are_refused_over_smtp_with_550_5_5_3(intake, sender, postgres, settings):
    before = stored_count(postgres, sender)
    recipients = [f"r{i}@example.org" for i in range(60)]
    reply = await smtp_data(intake, f"orders@{sender}", recipients, smtp_message(sender))
    assert settings.max_recipients == 50
    assert reply.startswith("550 5.5.3 At most 50 recipients")
    assert stored_count(postgres, sender) == before


async def test_50_recipients_and_the_received_lines_postfix_adds_are_accepted_over_smtp(intake, sender, postgres):
    recipients = [f"r{i}@example.org" for i in range(50)]
    content = smtp_message(sender, "Received: from client (client [192.0.2.1])\r\n\tby mail.test",
                           "Received: from laptop by client", "X-Note: a\tb")
    reply = await smtp_data(intake, f"orders@{sender}", recipients, content)
    assert reply.startswith("250 2.0.0 Ok: queued as ")
    email_id = reply.rsplit(" ", 1)[1]
    assert int(db(postgres, f"SELECT cardinality(recipients) FROM emails WHERE id = '{email_id}'")) == 50


# --- properties: no accepted input adds a header line, none answers 5xx ----------------------------------

# Allowed but awkward in a header: folding points, specials, encoded-word look-alikes, non-ASCII, header look-alikes.
TRICKY = ["\t", " ", ":", ";", ",", "<", ">", '"', "\\", "=?utf-8?q?=0D=0A?=", "é", "\u00a0", "\u202e", "😀",
          "Bcc: victim@example.org", "From : ceo@bank.example"]
ALLOWED = st.lists(st.one_of(st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"]), st.sampled_from(TRICKY)),
                   max_size=40).map("".join)
# Any text a str can hold once encoded (no unpaired surrogate), and also what JSON can carry.
TEXT = st.lists(st.one_of(st.characters(exclude_categories=["Cs"]), st.sampled_from([*TRICKY, *CONTROLS])),
                max_size=40).map("".join)
NOT_IN_A_NAME = str.maketrans("", "", '<>"')
JSON_TEXT = st.one_of(TEXT, st.builds(lambda a, b: f"{a}\ud800{b}", TEXT, TEXT))


@st.composite
def hostile_fields(draw: st.DrawFn, hostile: st.SearchStrategy[str] = JSON_TEXT) -> dict[str, str]:
    """Every header text of a request: all of it allowed text (half the examples), or any mix with `hostile`."""
    allowed_only = draw(st.booleans())
    text = ALLOWED if allowed_only else st.one_of(ALLOWED, hostile)
    long_text = st.one_of(text, st.builds(lambda a, n: a * n, text, st.integers(1, 30)))
    name = text.map(lambda t: t.translate(NOT_IN_A_NAME))  # a display name in <> form holds no < > "
    tag = st.from_regex(r"[A-Za-z0-9_-]{0,20}", fullmatch=True)  # msgspec's pattern for tags, then
    if not allowed_only:  # the trailing newline its `$` lets through, or anything
        tag = st.one_of(tag, tag.map(lambda t: f"{t}\n"), hostile)
    return {"subject": draw(long_text), "from_name": draw(name), "to_name": draw(name), "note": draw(long_text),
            "tag": draw(tag), "filename": draw(text)}


def hostile_body(sender: str, f: dict[str, str]) -> dict:
    return {"from": f"{f['from_name']} <orders@{sender}>", "to": [f"{f['to_name']} <buyer@example.org>"],
            "cc": [f"{f['to_name']} <copy@example.org>"], "reply_to": f"{f['from_name']} <desk@example.org>",
            "subject": f["subject"], "text": "Thanks.", "html": "<p>Thanks.</p>", "headers": {"X-Note": f["note"]},
            "tags": [{"name": "k", "value": f["tag"]}],
            "attachments": [{"filename": f["filename"] or "a.txt", "content": "aGk="}]}


EXPECTED = ["From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID", "X-Note", "MIME-Version",
            "Content-Type"]


@settings(max_examples=400, deadline=None)
@given(hostile_fields())
def test_no_accepted_request_renders_a_header_line_beyond_its_own(fields):
    try:
        draft = draft_from_request(msgspec.convert(hostile_body("shop.example", fields), SendEmail), 50)
    except (msgspec.ValidationError, ApiError):
        event("refused")
        return
    event("accepted")
    rendered = render(draft, "<1@shop.example>", datetime.now(UTC))
    assert header_names(rendered) == EXPECTED


@settings(max_examples=400, deadline=None)
@given(hostile_fields(TEXT))
def test_rendering_unchecked_text_writes_no_control_character_and_no_extra_line(fields):
    """Defence in depth: text that skipped validation is encoded, never folded at a control character."""
    draft = Draft(from_name=fields["from_name"], from_address="orders@shop.example", to=["buyer@example.org"],
                  cc=[], bcc=[], reply_to=[], subject=fields["subject"], html=None, text="Thanks.",
                  headers=[("X-Note", fields["note"])], attachments=[], tags=[], scheduled_at=None)
    rendered = render(draft, "<1@shop.example>", datetime.now(UTC))
    head = rendered.split(b"\r\n\r\n", 1)[0]
    assert re.fullmatch(rb"[ -~\t]*(\r\n[ \t][ -~\t]*|\r\n[!-9;-~]+:[ -~\t]*)*", head)
    assert header_names(rendered) == ["From", "To", "Subject", "Date", "Message-ID", "X-Note", "MIME-Version",
                                      "Content-Type", "Content-Transfer-Encoding"]


@pytest.fixture
def unthrottled(team, postgres):
    """`team` without its per-minute request limits, for the many requests of a property test."""
    postgres.psql(f"UPDATE teams SET rate_limit = 1000000, api_key_rate_limit = 1000000 WHERE id = '{team.team_id}'",
                  user="postyard_owner", database="postyard")
    return team


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=hostile_fields())
async def test_no_request_to_post_emails_answers_5xx_or_stores_an_extra_header_line(
        client, unthrottled, sender, postgres, fields):
    # json.dumps writes an unpaired surrogate as an escape, as a hostile client may.
    response = await client.post("/emails", content=json.dumps(hostile_body(sender, fields)),
                                 headers={**unthrottled.headers, "Content-Type": "application/json"})
    event(str(response.status_code))
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert header_names(stored_mime(postgres, response.json()["id"])) == EXPECTED
    else:
        assert response.json()["name"] == "validation_error"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subject=st.one_of(ALLOWED, ALLOWED, TEXT), note=st.one_of(ALLOWED, ALLOWED, TEXT))
async def test_no_smtp_submission_with_hostile_header_text_is_retried_or_stores_a_second_from(
        intake, sender, postgres, subject, note):
    content = smtp_message(sender, f"X-Note: {note}", head=f"From: Shop <orders@{sender}>\r\nSubject: {subject}")
    reply = await smtp_data(intake, f"orders@{sender}", ["buyer@example.org"], content)
    event(reply[:9])
    if reply.startswith("250"):
        names = header_names(stored_mime(postgres, reply.rsplit(" ", 1)[1]))
        assert Counter(n.lower() for n in names)["from"] == 1
    else:
        assert reply.startswith(("554 5.6.0", "550 5.7.1")), reply
