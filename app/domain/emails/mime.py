"""Rendering a draft as an RFC 5322/MIME message with the stdlib `email` package, and its VERP return path."""

from __future__ import annotations

import uuid
from datetime import datetime
from email import encoders
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr

from app.domain.emails.validation import AttachmentData, Draft

__all__ = ["email_id_from_verp", "message_id_for", "render", "verp_address"]

_VERP_LOCAL = "bounce+"
_MAX_LINE = 990
_POLICY = compat32.clone(linesep="\r\n")


def message_id_for(email_id: uuid.UUID, domain: str) -> str:
    """The Message-ID of an email: its id on the sending domain."""
    return f"<{email_id}@{domain}>"


def verp_address(email_id: uuid.UUID, return_path: str, domain: str) -> str:
    """The envelope sender: `bounce+<email id hex>@<return path subdomain>.<domain>`; bounces come back here."""
    return f"{_VERP_LOCAL}{email_id.hex}@{return_path}.{domain}"


def email_id_from_verp(address: str) -> uuid.UUID | None:
    """The email id a VERP address names, or None."""
    local = address.strip().strip("<>").partition("@")[0].lower()
    if not local.startswith(_VERP_LOCAL):
        return None
    try:
        return uuid.UUID(hex=local[len(_VERP_LOCAL):])
    except ValueError:
        return None


def _needs_encoding(value: str) -> bool:
    return not value.isascii()


def _header(value: str) -> str | Header:
    """ASCII values as they are; anything else as an RFC 2047 encoded word (UTF-8)."""
    return Header(value, "utf-8") if _needs_encoding(value) else value


def _text_part(body: str, subtype: str) -> MIMEText:
    """7bit when the body is ASCII with short lines, else UTF-8 in base64 (lines are never too long)."""
    lines_ok = all(len(line) <= _MAX_LINE for line in body.splitlines())
    part = MIMEText(body, subtype, "us-ascii" if body.isascii() and lines_ok else "utf-8")
    del part["MIME-Version"]
    return part


def _attachment_part(item: AttachmentData) -> MIMEBase:
    maintype, _, subtype = item.content_type.partition("/")
    part = MIMEBase(maintype, subtype)
    del part["MIME-Version"]
    part.set_payload(item.content)
    encoders.encode_base64(part)
    filename: str | tuple[str, str, str] = item.filename if item.filename.isascii() else ("utf-8", "", item.filename)
    if item.content_id:
        part.add_header("Content-Disposition", "inline", filename=filename)
        part["Content-ID"] = f"<{item.content_id}>"
    else:
        part.add_header("Content-Disposition", "attachment", filename=filename)
    return part


def _body(draft: Draft) -> Message:
    if draft.text is not None and draft.html is not None:
        alternative = MIMEMultipart("alternative", _subparts=[_text_part(draft.text, "plain"),
                                                              _text_part(draft.html, "html")])
        del alternative["MIME-Version"]
        return alternative
    if draft.html is not None:
        return _text_part(draft.html, "html")
    return _text_part(draft.text or "", "plain")


def render(draft: Draft, message_id: str, date: datetime) -> bytes:
    """The message as CRLF bytes: headers, multipart/alternative bodies, then attachments (multipart/mixed)."""
    body = _body(draft)
    if draft.attachments:
        msg: Message = MIMEMultipart("mixed", _subparts=[body, *(_attachment_part(a) for a in draft.attachments)])
    else:
        msg = body
    headers: list[tuple[str, str | Header]] = [
        ("From", formataddr((draft.from_name, draft.from_address), "utf-8")),
        ("To", ", ".join(draft.to)),
    ]
    if draft.cc:
        headers.append(("Cc", ", ".join(draft.cc)))
    if draft.reply_to:
        headers.append(("Reply-To", ", ".join(draft.reply_to)))
    headers += [("Subject", _header(draft.subject)), ("Date", format_datetime(date)), ("Message-ID", message_id)]
    headers += [(name, _header(value)) for name, value in draft.headers]
    headers.append(("MIME-Version", "1.0"))
    content_headers = [(k, v) for k, v in msg.items()]
    for name in {k for k, _ in content_headers}:
        del msg[name]
    for name, value in headers + [(k, v) for k, v in content_headers if k != "MIME-Version"]:
        msg[name] = value
    return msg.as_bytes(policy=_POLICY)
