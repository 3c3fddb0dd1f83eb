"""Rendering a draft as an RFC 5322/MIME message with the stdlib `email` package, and its VERP return path.

Header values are written as they are only when they are printable ASCII; anything else becomes RFC 2047
encoded words, so no control character reaches the output and no fold happens but at a space. The policy
checks every field it writes, and `render` checks the whole header block, against header injection.
(Python 3.11's `email.policy.default` is no answer: it decodes encoded words given in a value and writes
their CR LF out raw, CVE-2024-6923.)
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from email import encoders
from email.charset import Charset
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import format_datetime, formataddr
from typing import Any

from app.domain.emails.rules import Violation, check_fields, header_fields
from app.domain.emails.validation import AttachmentData, Draft

__all__ = ["email_id_from_verp", "message_id_for", "render", "verp_address"]

_VERP_LOCAL = "bounce+"
_MAX_LINE = 990
_PLAIN = re.compile(r"[ -~\t]*")
_UTF8 = Charset("utf-8")
_WORD_BYTES = 45  # base64 of 45 bytes is 60 characters: an encoded word stays under RFC 2047's 75


class _OneFieldPolicy(Compat32):
    """compat32 that writes a header field only as one field: printable ASCII, each further line folded."""

    def fold(self, name: str, value: Any) -> str:
        return self._one_field(name, super().fold(name, value))

    def fold_binary(self, name: str, value: Any) -> bytes:
        folded = super().fold_binary(name, value)
        self._one_field(name, folded.decode("ascii", "replace"))
        return folded

    def _one_field(self, name: str, folded: str) -> str:
        lines = folded.removesuffix(self.linesep).split(self.linesep)
        folded_right = all(line[:1] in (" ", "\t") for line in lines[1:])
        if not folded_right or not all(_PLAIN.fullmatch(line) for line in lines):
            raise Violation(f"the {name} header cannot be written as one header field")
        return folded


_POLICY = _OneFieldPolicy(linesep="\r\n")


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


def _plain(value: str) -> bool:
    return _PLAIN.fullmatch(value) is not None


def _encoded_words(value: str) -> str:
    """`value` as UTF-8 encoded words of at most 45 bytes each, separated by spaces: printable ASCII only."""
    words, chunk = [], ""
    for char in value:
        if chunk and len((chunk + char).encode()) > _WORD_BYTES:
            words.append(_UTF8.header_encode(chunk))
            chunk = ""
        chunk += char
    return " ".join([*words, _UTF8.header_encode(chunk)] if chunk else words)


def _header(value: str) -> str:
    """Printable ASCII as it is; anything else as encoded words (RFC 2047)."""
    return value if _plain(value) else _encoded_words(value)


def _mailbox(name: str, address: str) -> str:
    if _plain(name):
        return formataddr((name, address))
    return f"{_encoded_words(name)} <{address}>"


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
    # Anything but printable ASCII is percent-encoded (RFC 2231).
    filename: str | tuple[str, str, str] = item.filename if _plain(item.filename) else ("utf-8", "", item.filename)
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
    headers: list[tuple[str, str]] = [
        ("From", _mailbox(draft.from_name, draft.from_address)),
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
    intended = headers + [(k, v) for k, v in content_headers if k != "MIME-Version"]
    for name, value in intended:
        msg[name] = value
    rendered = msg.as_bytes(policy=_POLICY)
    _check_rendered(rendered, [name for name, _ in intended])
    return rendered


def _check_rendered(rendered: bytes, intended: list[str]) -> None:
    """The rendered header block holds exactly the intended fields, in order, and obeys the rules of any message."""
    fields = header_fields(rendered)
    if [name for name, _ in fields] != intended:
        raise Violation("the message cannot be written with exactly its own header fields")
    check_fields(fields)
