"""What the attachment routes of sent and received emails share: the attachment as Resend shows it, with a
signed download link, the lookup of one by id, and the response that downloads it."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from litestar import Request, Response

from app.domain.emails.attachments import StoredAttachment, download_token
from app.domain.emails.schemas import AttachmentOut
from app.lib.api_error import ApiError
from app.lib.auth import services as app_services
from app.lib.ids import parse_id
from app.lib.response_body import unless_none
from app.lib.signed_links import LinkSigner, absolute_link
from app.lib.timefmt import iso

__all__ = ["attachment_out", "download_response", "link_signer", "one_attachment"]

# A downloaded file is never rendered on the API's origin, whatever type its sender gave it.
_DOWNLOAD_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'",
                     "Cache-Control": "private, no-store"}


def link_signer(request: Request[Any, Any, Any], purpose: str) -> LinkSigner:
    """The signer of one kind of download link."""
    return LinkSigner(app_services(request).keyring, purpose)


def attachment_out(request: Request[Any, Any, Any], signer: LinkSigner, team_id: uuid.UUID, email_id: uuid.UUID,
                   item: StoredAttachment, email_path: str) -> AttachmentOut:
    """The attachment, with a link under `email_path` (the email's own route) valid for an hour."""
    token, expires = download_token(signer, team_id, email_id, item.id)
    return AttachmentOut(
        id=str(item.id), filename=item.filename, content_type=item.content_type,
        content_id=unless_none(item.content_id), content_disposition=item.disposition, size=len(item.content),
        expires_at=iso(expires) or "",
        download_url=absolute_link(request, f"{email_path}/attachments/{item.id}/content?token={token}"))


def _disposition(filename: str) -> str:
    """`attachment` with the name (RFC 6266): an ASCII fallback without quotes or control characters, and the
    name itself percent-encoded as UTF-8."""
    fallback = "".join(c for c in filename if " " <= c <= "~" and c not in '"\\') or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def one_attachment(items: list[StoredAttachment], attachment_id: str) -> StoredAttachment:
    """The attachment with this id, or 404."""
    wanted = parse_id(attachment_id, "Attachment")
    found = next((a for a in items if a.id == wanted), None)
    if found is None:
        raise ApiError(404, "not_found", "Attachment not found")
    return found


def download_response(item: StoredAttachment) -> Response[bytes]:
    """The attachment's bytes, as a file to save, never to render."""
    return Response(item.content, media_type=item.content_type, headers={
        **_DOWNLOAD_HEADERS, "Content-Disposition": _disposition(item.filename or f"attachment-{item.id}")})
