"""Rendering a draft as an RFC 5322 message with the stdlib `email` package, and its VERP return path."""

from __future__ import annotations

import uuid
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from app.domain.emails.validation import Draft

__all__ = ["email_id_from_verp", "message_id_for", "render", "verp_address"]

_VERP_LOCAL = "bounce+"


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


def _from_header(draft: Draft) -> str:
    local, _, domain = draft.from_address.rpartition("@")
    return str(Address(display_name=draft.from_name, username=local, domain=domain))


def render(draft: Draft, message_id: str, date: datetime) -> bytes:
    """The message as CRLF bytes: headers, multipart/alternative bodies, then attachments (multipart/mixed)."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = _from_header(draft)
    msg["To"] = ", ".join(draft.to)
    if draft.cc:
        msg["Cc"] = ", ".join(draft.cc)
    if draft.reply_to:
        msg["Reply-To"] = ", ".join(draft.reply_to)
    msg["Subject"] = draft.subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    for name, value in draft.headers:
        msg[name] = value
    if draft.text is not None and draft.html is not None:
        msg.set_content(draft.text)
        msg.add_alternative(draft.html, subtype="html")
    elif draft.html is not None:
        msg.set_content(draft.html, subtype="html")
    else:
        msg.set_content(draft.text or "")
    for item in draft.attachments:
        maintype, _, subtype = item.content_type.partition("/")
        if item.content_id:
            msg.add_attachment(item.content, maintype=maintype, subtype=subtype, filename=item.filename,
                               disposition="inline", cid=f"<{item.content_id}>")
        else:
            msg.add_attachment(item.content, maintype=maintype, subtype=subtype, filename=item.filename)
    return msg.as_bytes()
