"""Mail submitted over SMTP (465/587) becoming an email, exactly like one sent through `POST /emails`.

Postfix's submission listeners hand each authenticated message to the intake service
(`app/mailhost/smtp_intake.py`) before they answer the client (a before-queue proxy filter), so the
client's 250 comes only after the email and its first events are committed (in a transaction shared with
concurrent submissions: app/mailhost/smtp_intake.py, app/db/group_commit.py). From there the
outbox worker sends it like any other email: VERP return path, DKIM on the internal listener, and
delivery results, bounces and complaints as events and webhooks.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import MessageError
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import format_datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import Settings
from app.domain.emails import repository, rules
from app.domain.emails.admission import admit
from app.domain.emails.mime import message_id_for, verp_address
from app.domain.emails.repository import NewEmail
from app.domain.events.recorder import EmailSummary, Event, record_events
from app.domain.suppressions import repository as suppressions

__all__ = ["ParsedSubmission", "Refused", "Submission", "parse_submission", "store_submission", "without_header"]


class Refused(Exception):
    """An SMTP refusal with its enhanced status code."""

    def __init__(self, code: int, status: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.status, self.reason = code, status, reason

    @property
    def reply(self) -> str:
        return f"{self.code} {self.status} {self.reason}"


@dataclass(frozen=True)
class Submission:
    """One message as Postfix handed it over: envelope and content (CRLF lines, dots unstuffed)."""

    envelope_from: str
    recipients: list[str]
    content: bytes


class _HeadersParsedOnce(EmailPolicy):
    """`email.policy.default`, parsing each header value once: the package parses a header again on every
    access, and reading a message's body reads its Content-Type nine times."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name") or len(value) > _CACHED_HEADER_CHARS:
            return super().header_fetch_parse(name, value)
        return _parsed_header(self, name, value)


_CACHED_HEADER_CHARS = 998  # RFC 5322's line limit: longer values are parsed on each access, not kept


@functools.lru_cache(maxsize=256)
def _parsed_header(policy: EmailPolicy, name: str, value: str) -> Any:
    return EmailPolicy.header_fetch_parse(policy, name, value)


_POLICY = _HeadersParsedOnce()


def without_header(raw: bytes, name: str) -> bytes:
    """The message without every field called `name` (folded lines included); the body is untouched."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = len(raw)
    kept, skipping, wanted = [], False, name.lower().encode()
    for line in raw[:end].split(b"\r\n"):
        if line[:1] not in (b" ", b"\t"):
            skipping = line.split(b":", 1)[0].strip().lower() == wanted
        if not skipping:
            kept.append(line)
    return b"\r\n".join(kept) + raw[end:]


def _one_address(message: EmailMessage, name: str) -> tuple[str, str]:
    """(display name, address) of a header that must name exactly one mailbox."""
    try:
        header = message[name]
        mailboxes = list(header.addresses) if header is not None else []
    except (MessageError, ValueError, IndexError, AttributeError):
        mailboxes = []
    if len(mailboxes) != 1 or not mailboxes[0].domain:
        raise Refused(*rules.MALFORMED, f"The message needs a {name} header with exactly one address")
    return rules.check_text(mailboxes[0].display_name, f"the {name} header"), mailboxes[0].addr_spec


def _addresses(message: EmailMessage, name: str) -> list[str]:
    try:
        return [a.addr_spec for header in message.get_all(name) or [] for a in header.addresses if a.addr_spec]
    except (MessageError, ValueError, IndexError, AttributeError):
        return []


def _body(message: EmailMessage, subtype: str) -> str | None:
    """The message's text or HTML body for `GET /emails/{id}`; None when absent or undecodable."""
    try:
        part = message.get_body((subtype,))
        body = None if part is None else str(part.get_content()).replace("\r\n", "\n")
    except (MessageError, LookupError, UnicodeError, ValueError, KeyError):
        return None
    if body is not None and "\0" in body:
        raise rules.Violation(f"the message's {subtype} text must not contain NUL characters")
    return body


_VERIFIED_DOMAIN = text(
    "SELECT id, team_id, name, return_path FROM domains WHERE name = :name AND status = 'verified'")


async def _verified_domain(conn: AsyncConnection, sender_domain: str) -> Any:
    row = (await conn.execute(_VERIFIED_DOMAIN, {"name": sender_domain})).first()
    if row is None:
        raise Refused(550, "5.7.1", f"The {sender_domain} domain is not verified")
    return row


def _obey_rules(raw: bytes, recipients: list[str], max_recipients: int) -> None:
    """The rules of `POST /emails` (app/domain/emails/rules.py): header fields, recipient count."""
    if b"\0" in raw:
        raise rules.Violation("a message must not contain NUL characters (RFC 5322)")
    rules.check_fields(rules.header_fields(raw))
    rules.check_recipient_count(len(recipients), max_recipients)


@dataclass(frozen=True, eq=False)
class ParsedSubmission:
    """A submission that passed the checks needing no database: what storing it reads from the message."""

    submission: Submission
    sender_domain: str
    from_name: str
    from_address: str
    given_message_id: str | None
    dated: bool
    to: list[str]
    cc: list[str]
    reply_to: list[str]
    subject: str
    html: str | None
    text_body: str | None


def parse_submission(submission: Submission, settings: Settings) -> ParsedSubmission:
    """Check and parse the message, before any transaction; raises `Refused` or a `rules.Violation`."""
    raw = submission.content
    if len(raw) > settings.max_message_bytes:
        raise Refused(552, "5.3.4", f"The message is {len(raw)} bytes; the limit is {settings.max_message_bytes}")
    sender_domain = submission.envelope_from.rpartition("@")[2].lower()
    if not sender_domain:
        raise Refused(550, "5.7.1", "A sender address on a verified domain is required")
    _obey_rules(raw, submission.recipients, settings.max_recipients)
    message: EmailMessage = BytesParser(policy=_POLICY).parsebytes(raw)  # type: ignore[assignment]
    from_name, from_address = _one_address(message, "From")
    if (from_domain := from_address.rpartition("@")[2].lower()) != sender_domain:
        raise Refused(550, "5.7.1", f"The From address's domain ({from_domain}) must be the envelope sender's "
                                    f"domain ({sender_domain})")
    given = str(message.get("Message-ID", "") or "").strip()
    return ParsedSubmission(
        submission=submission, sender_domain=sender_domain, from_name=from_name, from_address=from_address,
        given_message_id=given if given.startswith("<") and given.endswith(">") else None,
        dated=message["Date"] is not None, to=_addresses(message, "To"), cc=_addresses(message, "Cc"),
        reply_to=_addresses(message, "Reply-To"),
        subject=rules.check_text(str(message.get("Subject", "") or ""), "the Subject header"),
        html=_body(message, "html"), text_body=_body(message, "plain"))


async def store_submission(conn: AsyncConnection, parsed: ParsedSubmission) -> uuid.UUID:
    """Store the message as a queued email with its first events, in the caller's transaction.

    Raises `Refused` for a sender it may not send as, or `SendingRefused` from the team's admission.
    """
    domain = await _verified_domain(conn, parsed.sender_domain)
    email_id, now = uuid.uuid4(), datetime.now(UTC)
    raw, added = parsed.submission.content, b""
    message_id = parsed.given_message_id
    if message_id is not None and await repository.message_id_taken(conn, message_id):
        message_id = None  # ours replaces a Message-ID that is not unique
    if message_id is None:
        message_id = message_id_for(email_id, domain.name)
        raw = without_header(raw, "Message-ID")
        added += f"Message-ID: {message_id}\r\n".encode()
    if not parsed.dated:
        added += f"Date: {format_datetime(now)}\r\n".encode()
    raw = added + raw

    envelope = [r for r in parsed.submission.recipients if r]
    suppressed = await suppressions.suppressed_among(conn, domain.team_id, sorted({r.lower() for r in envelope}))
    recipients = [r for r in envelope if r.lower() not in suppressed]
    listed = {a.lower() for a in parsed.to + parsed.cc}
    summary = EmailSummary(id=email_id, team_id=domain.team_id, from_address=parsed.from_address,
                           to_addresses=parsed.to, subject=parsed.subject, created_at=now)
    events = [Event(summary, "queued", detail={"via": "smtp"})]
    events += [Event(summary, "suppressed", recipient=r, detail={"reason": suppressed[r.lower()]})
               for r in envelope if r.lower() in suppressed]
    from_address = f"{parsed.from_name} <{parsed.from_address}>" if parsed.from_name else parsed.from_address
    email = NewEmail(
        email_id=email_id, team_id=domain.team_id, api_key_id=None, mode="live", domain_id=domain.id,
        from_address=from_address, to_addresses=parsed.to, cc_addresses=parsed.cc,
        bcc_addresses=[r for r in envelope if r.lower() not in listed], reply_to=parsed.reply_to,
        subject=parsed.subject, html=parsed.html, text_body=parsed.text_body, message_id=message_id,
        envelope_from=verp_address(email_id, domain.return_path, domain.name), envelope_recipients=recipients,
        mime=raw, state="queued" if recipients else "suppressed",
        last_event="queued" if recipients else "suppressed", scheduled_at=None, next_attempt_at=now, now=now,
    )
    await admit(conn, domain.team_id, 1)  # suspension, approval and quotas, as on POST /emails
    await record_events(conn, events, set_last_event=False, before=(repository.INSERT_EMAIL, email.parameters()))
    return email_id
