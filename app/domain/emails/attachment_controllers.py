"""Routes of /emails/{email_id}/attachments, shaped like Resend's, and the signed download links they hand out."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery

from app.db.tenancy import scope_to_team
from app.domain.emails.attachments import (
    DOWNLOAD_PURPOSE,
    StoredAttachment,
    download_token,
    email_attachments,
    read_download_token,
)
from app.domain.emails.schemas import AttachmentList, AttachmentOut
from app.lib.anonymous_limits import limit_per_ip
from app.lib.api_error import ApiError
from app.lib.auth import Principal, provide_principal
from app.lib.auth import services as app_services
from app.lib.dependencies import DbSession
from app.lib.ids import parse_id
from app.lib.pagination import Limit, page_of
from app.lib.response_body import unless_none
from app.lib.signed_links import BadLink, LinkSigner, absolute_link
from app.lib.timefmt import iso

__all__ = ["EmailAttachmentController"]

# A downloaded file is never rendered on the API's origin, whatever type its sender gave it.
_DOWNLOAD_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'",
                     "Cache-Control": "private, no-store"}


def _signer(request: Request[Any, Any, Any]) -> LinkSigner:
    return LinkSigner(app_services(request).keyring, DOWNLOAD_PURPOSE)


def _out(request: Request[Any, Any, Any], principal: Principal, email_id: uuid.UUID,
         item: StoredAttachment) -> AttachmentOut:
    token, expires = download_token(_signer(request), principal.team_id, email_id, item.id)
    return AttachmentOut(
        id=str(item.id), filename=item.filename, content_type=item.content_type,
        content_id=unless_none(item.content_id), content_disposition=item.disposition, size=len(item.content),
        expires_at=iso(expires) or "",
        download_url=absolute_link(request, f"/emails/{email_id}/attachments/{item.id}/content?token={token}"))


def _disposition(filename: str) -> str:
    """`attachment` with the name (RFC 6266): an ASCII fallback without quotes or control characters, and the
    name itself percent-encoded as UTF-8."""
    fallback = "".join(c for c in filename if " " <= c <= "~" and c not in '"\\') or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _one(items: list[StoredAttachment], attachment_id: str) -> StoredAttachment:
    wanted = parse_id(attachment_id, "Attachment")
    found = next((a for a in items if a.id == wanted), None)
    if found is None:
        raise ApiError(404, "not_found", "Attachment not found")
    return found


class EmailAttachmentController(Controller):
    """List an email's attachments, read one, and download one through its signed link."""

    path = "/emails/{email_id:str}/attachments"
    tags = ["Emails"]
    dependencies = {"principal": Provide(provide_principal)}

    @get("/", operation_id="emails/attachments/list")
    async def list_attachments(
        self, request: Request[Any, Any, Any], email_id: FromPath[str], principal: NamedDependency[Principal],
        db_session: DbSession, limit: Limit = 20, after: FromQuery[str | None] = None,
        before: FromQuery[str | None] = None,
    ) -> AttachmentList:
        """The email's attachments in the message's order (none once its body is purged by retention)."""
        eid = parse_id(email_id, "Email")
        items, has_more = page_of(await email_attachments(db_session, principal.team_id, eid), limit, after, before)
        return AttachmentList(data=[_out(request, principal, eid, a) for a in items], has_more=has_more)

    @get("/{attachment_id:str}", operation_id="emails/attachments/get")
    async def get_attachment(
        self, request: Request[Any, Any, Any], email_id: FromPath[str], attachment_id: FromPath[str],
        principal: NamedDependency[Principal], db_session: DbSession,
    ) -> AttachmentOut:
        """One attachment, with a download link valid for an hour."""
        eid = parse_id(email_id, "Email")
        item = _one(await email_attachments(db_session, principal.team_id, eid), attachment_id)
        return _out(request, principal, eid, item)

    @get("/{attachment_id:str}/content", operation_id="emails/attachments/download", include_in_schema=False)
    async def download(
        self, request: Request[Any, Any, Any], email_id: FromPath[str], attachment_id: FromPath[str],
        db_session: DbSession, token: FromQuery[str] = "",
    ) -> Response[bytes]:
        """The attachment's bytes, for whoever holds a link that is signed, unexpired and made for it."""
        await limit_per_ip(request, "attachment-download")
        eid, aid = parse_id(email_id, "Email"), parse_id(attachment_id, "Attachment")
        try:
            team_id = read_download_token(_signer(request), token, eid, aid)
        except (BadLink, ValueError, TypeError):
            raise ApiError(403, "invalid_link", "This download link is not valid or has expired") from None
        await scope_to_team(db_session, team_id)
        item = _one(await email_attachments(db_session, team_id, eid), attachment_id)
        return Response(item.content, media_type=item.content_type, headers={
            **_DOWNLOAD_HEADERS, "Content-Disposition": _disposition(item.filename or f"attachment-{item.id}")})
