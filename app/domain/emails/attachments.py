"""A sent email's attachments, read from its stored message (app/domain/emails/message_attachments.py), and the
signed links that download them. A download link names the team, the email and the attachment and is signed
(app/lib/signed_links.py); it works without an API key until it expires, as Resend's `download_url` does.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from app.db.executor import Executor
from app.domain.emails import repository
from app.domain.emails.message_attachments import StoredAttachment, attachments_of
from app.lib.api_error import ApiError
from app.lib.signed_links import BadLink, LinkSigner

__all__ = ["DOWNLOAD_LINK_SECONDS", "DOWNLOAD_PURPOSE", "StoredAttachment", "attachments_of", "download_token",
           "email_attachments", "read_download_token"]

DOWNLOAD_PURPOSE = "attachment-download"
DOWNLOAD_LINK_SECONDS = 3600


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
