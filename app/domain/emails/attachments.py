"""An email's attachments, read from its stored message, and the signed links that download them.

An attachment's id is derived from the email's id and its place in the message, so it is the same on every
read. A download link names the team, the email and the attachment and is signed (app/lib/signed_links.py);
it works without an API key until it expires, as Resend's `download_url` does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

from app.db.executor import Executor
from app.domain.emails import repository
from app.lib.api_error import ApiError
from app.lib.signed_links import BadLink, LinkSigner

__all__ = ["DOWNLOAD_LINK_SECONDS", "DOWNLOAD_PURPOSE", "StoredAttachment", "attachments_of", "download_token",
           "email_attachments", "read_download_token"]

DOWNLOAD_PURPOSE = "attachment-download"
DOWNLOAD_LINK_SECONDS = 3600


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


def download_token(signer: LinkSigner, team_id: uuid.UUID, email_id: uuid.UUID,
                   attachment_id: uuid.UUID) -> tuple[str, datetime]:
    """A token for the attachment's download link, and when it expires."""
    token = signer.sign([str(team_id), str(email_id), str(attachment_id)])
    return token, datetime.now(UTC) + timedelta(seconds=DOWNLOAD_LINK_SECONDS)


def read_download_token(signer: LinkSigner, token: str, email_id: uuid.UUID,
                        attachment_id: uuid.UUID) -> uuid.UUID:
    """The team a download token was made for, if it was made for this email's attachment and has not expired."""
    team, email, attachment = signer.read(token, DOWNLOAD_LINK_SECONDS)
    if (email, attachment) != (str(email_id), str(attachment_id)):
        raise BadLink("the link was made for another attachment")
    return uuid.UUID(team)


async def email_attachments(db: Executor, team_id: uuid.UUID, email_id: uuid.UUID) -> list[StoredAttachment]:
    """The attachments of one email of the team (404 if it has no such email)."""
    found, mime = await repository.email_mime(db, team_id, email_id)
    if not found:
        raise ApiError(404, "not_found", "Email not found")
    return attachments_of(email_id, mime)
