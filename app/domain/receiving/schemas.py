"""Response bodies of /emails/receiving, shaped as Resend's received emails, with Postyard's verdicts."""

from __future__ import annotations

import msgspec

from app.lib.response_body import ABSENT, Absent

__all__ = ["Authentication", "ReceivedAttachment", "ReceivedEmailList", "ReceivedEmailListItem", "ReceivedEmailOut"]


class ReceivedAttachment(msgspec.Struct):
    """An attachment of a received email as listed with it (its download link is on the attachment routes)."""

    id: str
    filename: str | None
    content_type: str
    content_disposition: str
    size: int
    content_id: str | Absent = ABSENT


class Authentication(msgspec.Struct):
    """Postyard's extension: the SPF, DKIM and DMARC verdicts on the message when it came in, and the
    Authentication-Results header (RFC 8601) they were read from."""

    spf: str
    dkim: str
    dmarc: str
    results: str


class ReceivedEmailListItem(msgspec.Struct, kw_only=True):
    """A received email as listed."""

    id: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    reply_to: list[str]
    subject: str
    message_id: str
    created_at: str
    attachments: list[ReceivedAttachment]
    authentication: Authentication
    from_: str = msgspec.field(name="from", default="")


class ReceivedEmailOut(ReceivedEmailListItem, kw_only=True):
    """A received email with its bodies, headers and envelope."""

    html: str | None
    text: str | None
    headers: dict[str, str | list[str]]
    envelope_from: str
    envelope_to: list[str]
    object: str = "email"


class ReceivedEmailList(msgspec.Struct):
    """A page of the team's received emails, newest first."""

    data: list[ReceivedEmailListItem]
    has_more: bool = False
    object: str = "list"
