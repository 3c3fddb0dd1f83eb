"""Parsing delivery status notifications (RFC 3464) and abuse feedback reports (ARF, RFC 5965)."""

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

    @property
    def hard(self) -> bool:
        """A permanent failure (Action: failed with a 5.x.x status)."""
        return self.action == "failed" and self.status.startswith("5.")


@dataclass
class Report:
    """What a report says happened to which of our emails."""

    kind: str
    recipients: list[RecipientStatus] = field(default_factory=list)
    email_id: uuid.UUID | None = None
    message_id: str | None = None
    feedback_type: str | None = None


def _address(value: str | None) -> str:
    """`rfc822; user@example.org` -> `user@example.org`."""
    if not value:
        return ""
    _, _, address = str(value).rpartition(";")
    return address.strip().strip("<>").lower()


def _blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = payload if isinstance(payload, str) else part.get_payload(decode=True).decode("utf-8", "replace")
    return [HeaderParser().parsestr(block.strip() + "\n") for block in re.split(r"\r?\n\r?\n", text)
            if block.strip()]


def _original_message_id(msg: Message) -> str | None:
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, Message) and inner.get("Message-ID"):
                return str(inner["Message-ID"]).strip()
        elif ctype in ("text/rfc822-headers", "text/global-headers"):
            headers = HeaderParser().parsestr(part.get_payload(decode=True).decode("utf-8", "replace"))
            if headers.get("Message-ID"):
                return str(headers["Message-ID"]).strip()
    return None


def _dsn(part: Message) -> list[RecipientStatus]:
    statuses = []
    for block in _blocks(part)[1:]:
        recipient = _address(block.get("Final-Recipient") or block.get("Original-Recipient"))
        if not recipient:
            continue
        status = _STATUS.search(str(block.get("Status", "")))
        statuses.append(RecipientStatus(address=recipient, action=str(block.get("Action", "")).strip().lower(),
                                        status=status.group(1) if status else "",
                                        diagnostic=" ".join(str(block.get("Diagnostic-Code", "")).split())[:1000]))
    return statuses


def parse_report(raw: bytes, envelope_recipient: str | None = None) -> Report | None:
    """The DSN or ARF report in `raw`, or None if it is neither (an auto-reply, spam, a stray message)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    email_id = email_id_from_verp(envelope_recipient or "")
    for header in ("X-Original-To", "Delivered-To", "To"):
        if email_id is None and msg.get(header):
            email_id = email_id_from_verp(_address(str(msg[header])))
    report_type = (msg.get_param("report-type") or "").lower() if msg.get_content_type() == "multipart/report" \
        else ""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status") and report_type != "feedback-report":
            statuses = _dsn(part)
            if not statuses:
                return None
            kind = "bounce" if any(s.action == "failed" for s in statuses) else (
                "delay" if any(s.action == "delayed" for s in statuses) else "other")
            return Report(kind=kind, recipients=statuses, email_id=email_id, message_id=_original_message_id(msg))
        if ctype == "message/feedback-report":
            fields = _blocks(part)[0] if _blocks(part) else Message()
            rcpt = _address(fields.get("Original-Rcpt-To"))
            return Report(kind="complaint", email_id=email_id, message_id=_original_message_id(msg),
                          feedback_type=str(fields.get("Feedback-Type", "")).strip().lower() or None,
                          recipients=[RecipientStatus(address=rcpt, action="complained")] if rcpt else [])
    return None
