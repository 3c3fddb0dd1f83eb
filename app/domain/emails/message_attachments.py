"""The attachments of a stored message (a sent email's, or a received one's), read with the standard library alone:
the receive pipe, which starts once per message, reads them too. An attachment's id is derived from the email's id
and its place in the message, so it is the same on every read."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

__all__ = ["StoredAttachment", "attachments_of"]


@dataclass(frozen=True)
class StoredAttachment:
    """One attachment of a stored message."""

    id: uuid.UUID
    filename: str | None
    content_type: str
    content_id: str | None
    disposition: str
    content: bytes


def attachments_of(email_id: uuid.UUID, mime: bytes | None) -> list[StoredAttachment]:
    """The parts of the message sent as attachments or inline files, in order (none once the body is purged)."""
    if not mime:
        return []
    message = message_from_bytes(mime, policy=policy.default)
    found = []
    for part in message.walk():
        disposition = part.get_content_disposition()
        if part.is_multipart() or disposition not in ("attachment", "inline"):
            continue
        if disposition == "inline" and not (part.get_filename() or part["Content-ID"]):
            continue  # an inline body part, not a file
        content = part.get_payload(decode=True) if isinstance(part, EmailMessage) else None
        content_id = str(part["Content-ID"]).strip().strip("<>") if part["Content-ID"] else None
        found.append(StoredAttachment(
            id=uuid.uuid5(email_id, f"attachment:{len(found)}"), filename=part.get_filename(),
            content_type=part.get_content_type(), content_id=content_id, disposition=disposition,
            content=content if isinstance(content, bytes) else b""))
    return found
