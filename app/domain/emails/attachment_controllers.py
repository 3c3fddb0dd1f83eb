"""Routes of /emails/{email_id}/attachments, shaped like Resend's, and the signed download links they hand out."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery

from app.db.tenancy import scope_to_team
from app.domain.emails.attachment_links import attachment_out, download_response, link_signer, one_attachment
from app.domain.emails.attachments import DOWNLOAD_PURPOSE, StoredAttachment, email_attachments, read_download_token
from app.domain.emails.schemas import AttachmentList, AttachmentOut
from app.lib.anonymous_limits import limit_per_ip
from app.lib.api_error import ApiError
from app.lib.auth import Principal, provide_principal
from app.lib.dependencies import DbSession
from app.lib.ids import parse_id
from app.lib.pagination import Limit, page_of
from app.lib.signed_links import BadLink, LinkSigner

__all__ = ["EmailAttachmentController"]


def _signer(request: Request[Any, Any, Any]) -> LinkSigner:
    return link_signer(request, DOWNLOAD_PURPOSE)


def _out(request: Request[Any, Any, Any], principal: Principal, email_id: uuid.UUID,
         item: StoredAttachment) -> AttachmentOut:
    return attachment_out(request, _signer(request), principal.team_id, email_id, item, f"/emails/{email_id}")


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
        item = one_attachment(await email_attachments(db_session, principal.team_id, eid), attachment_id)
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
        item = one_attachment(await email_attachments(db_session, team_id, eid), attachment_id)
        return download_response(item)
