"""Parsing delivery status notifications (RFC 3464) and abuse feedback reports (ARF, RFC 5965).

Parsing only says what a report claims; `integrity` decides whether it may change anything.
"""

from __future__ import annotations

import email
import email.policy
import re
import uuid
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser

from app.domain.emails.mime import email_id_from_verp

__all__ = ["RecipientStatus", "Report", "parse_report"]

_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


@dataclass(frozen=True)
class RecipientStatus:
    """One recipient's block of a DSN (or the complaining recipient of an ARF report)."""

    address: str
    action: str
    status: str = ""
    diagnostic: str = ""
    original: str = ""  # the DSN's Original-Recipient: the address as the sender gave it

    @property
    def addresses(self) -> tuple[str, ...]:
        """The addresses this block names, the one the sender gave first."""
        return tuple(dict.fromkeys(a for a in (self.original, self.address) if a))

    @property
    def hard(self) -> bool:
        """A permanent failure (Action: failed with a 5.x.x status)."""
        return self.action == "failed" and self.status.startswith("5.")


@dataclass
class Report:
    """What a report says happened to which of our emails.

    `verp` holds every VERP address the report names: the one it was sent to first (when it was
    sent to one), then those it quotes (ARF's Original-Mail-From, Postfix's X-Postfix-Sender, the
    returned message's Return-Path). `message_id` is the returned message's Message-ID, if included.
    """

    kind: str
    recipients: list[RecipientStatus] = field(default_factory=list)
    verp: list[str] = field(default_factory=list)
    message_id: str | None = None
    feedback_type: str | None = None
    sent_to: str = ""

    @property
    def email_id(self) -> uuid.UUID | None:
        """The email the report's first VERP address names."""
        return email_id_from_verp(self.verp[0]) if self.verp else None


def _text(value: object) -> str:
    """A field from outside as storable text: undecodable bytes replaced, control characters and NUL dropped."""
    text = str(value)
    try:  # the parser keeps 8-bit bytes as surrogate escapes
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return "".join(c if c.isprintable() else " " for c in text)


def _address(value: str | None) -> str:
    """`rfc822; user@example.org` -> `user@example.org`."""
    if not value:
        return ""
    _, _, address = _text(value).rpartition(";")
    return address.strip().strip("<>").lower()


def _blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = payload if isinstance(payload, str) else part.get_payload(decode=True).decode("utf-8", "replace")
    return [HeaderParser().parsestr(block.strip() + "\n") for block in re.split(r"\r?\n\r?\n", text)
            if block.strip()]


def _returned_headers(msg: Message) -> Message | None:
    """The headers of the returned message (message/rfc822 or text/rfc822-headers part), if the report has one."""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, Message):
                return inner
        elif ctype in ("text/rfc822-headers", "text/global-headers"):
            payload = part.get_payload(decode=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(part.get_payload())
            return HeaderParser().parsestr(text)
    return None


def _header(headers: Message | None, name: str) -> str | None:
    """A header of the returned message, unfolded and without spaces; None when absent or empty."""
    value = headers.get(name) if headers is not None else None
    return ("".join(_text(value).split())[:998] or None) if value is not None else None


def _verp(*addresses: str | None) -> list[str]:
    """The VERP addresses among these, lowercased, in order."""
    return [a for a in map(_address, addresses) if email_id_from_verp(a) is not None]


def _sent_to(msg: Message, envelope_recipient: str | None) -> str:
    """The VERP address the report was sent to: the envelope recipient, else its delivery headers."""
    for candidate in (envelope_recipient, msg.get("X-Original-To"), msg.get("Delivered-To"), msg.get("To")):
        if candidate and (found := _verp(str(candidate))):
            return found[0]
    return ""


def _dsn(part: Message) -> tuple[Message, list[RecipientStatus]]:
    """The per-message fields and the recipients' blocks."""
    blocks = _blocks(part)
    statuses = []
    for block in blocks[1:]:
        original = _address(block.get("Original-Recipient"))
        recipient = _address(block.get("Final-Recipient")) or original
        if not recipient:
            continue
        status = _STATUS.search(str(block.get("Status", "")))
        statuses.append(RecipientStatus(address=recipient, action=_text(block.get("Action", "")).strip().lower(),
                                        status=status.group(1) if status else "", original=original,
                                        diagnostic=" ".join(_text(block.get("Diagnostic-Code", "")).split())[:1000]))
    return (blocks[0] if blocks else Message()), statuses


def parse_report(raw: bytes, envelope_recipient: str | None = None) -> Report | None:
    """The DSN or ARF report in `raw`, or None if it is neither (an auto-reply, spam, a stray message)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    sent_to = _sent_to(msg, envelope_recipient)
    returned = _returned_headers(msg)
    quoted = [returned.get("Return-Path")] if returned is not None else []
    report_type = (msg.get_param("report-type") or "").lower() if msg.get_content_type() == "multipart/report" \
        else ""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status") and report_type != "feedback-report":
            fields, statuses = _dsn(part)
            if not statuses:
                return None
            kind = "bounce" if any(s.action == "failed" for s in statuses) else (
                "delay" if any(s.action == "delayed" for s in statuses) else "other")
            return Report(kind=kind, recipients=statuses, sent_to=envelope_recipient or sent_to,
                          verp=_verp(sent_to, fields.get("X-Postfix-Sender"), *quoted),
                          message_id=_header(returned, "Message-ID"))
        if ctype == "message/feedback-report":
            fields = _blocks(part)[0] if _blocks(part) else Message()
            rcpts = dict.fromkeys(filter(None, map(_address, fields.get_all("Original-Rcpt-To") or [])))
            return Report(kind="complaint", sent_to=envelope_recipient or sent_to,
                          verp=_verp(sent_to, fields.get("Original-Mail-From"), *quoted),
                          message_id=_header(returned, "Message-ID"),
                          feedback_type=_text(fields.get("Feedback-Type", "")).strip().lower()[:64] or None,
                          recipients=[RecipientStatus(address=r, action="complained") for r in rcpts])
    return None
