"""Routes of /emails/receiving, shaped as Resend's receiving API: the team's received emails, their attachments,
and the signed links that download them."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery

from app.db.tenancy import scope_to_team
from app.domain.emails.attachment_links import attachment_out, download_response, link_signer, one_attachment
from app.domain.emails.attachments import StoredAttachment, attachments_of, read_download_token
from app.domain.emails.schemas import AttachmentList, AttachmentOut
from app.domain.receiving import repository
from app.domain.receiving.message_fields import bodies_of, headers_of
from app.domain.receiving.schemas import (
    Authentication,
    ReceivedAttachment,
    ReceivedEmailList,
    ReceivedEmailListItem,
    ReceivedEmailOut,
)
from app.lib.anonymous_limits import limit_per_ip
from app.lib.api_error import ApiError
from app.lib.auth import Principal, provide_principal
from app.lib.dependencies import DbSession
from app.lib.ids import parse_id
from app.lib.pagination import Limit, cursor_id, page_of
from app.lib.response_body import unless_none
from app.lib.signed_links import BadLink
from app.lib.timefmt import iso

__all__ = ["ReceivedEmailController"]

DOWNLOAD_PURPOSE = "received-attachment-download"  # its own key: a sent email's link opens no received one


def _attachments(row: Any) -> list[StoredAttachment]:
    return attachments_of(row.id, bytes(row.mime))


def _listed(summary: dict[str, Any]) -> ReceivedAttachment:
    """An attachment as summarised when the message came in (app/domain/receiving/intake.py)."""
    return ReceivedAttachment(id=summary["id"], filename=summary["filename"], content_type=summary["content_type"],
                              content_disposition=summary["content_disposition"], size=summary["size"],
                              content_id=unless_none(summary.get("content_id")))


def _shown(row: Any) -> dict[str, Any]:
    """What a received email shows, listed or read alone, without reading its message."""
    return {"id": str(row.id), "from_": row.from_address, "to": list(row.to_addresses), "cc": list(row.cc_addresses),
            "bcc": list(row.bcc_addresses), "reply_to": list(row.reply_to), "subject": row.subject,
            "message_id": row.message_id, "created_at": iso(row.created_at) or "",
            "attachments": [_listed(a) for a in row.attachments],
            "authentication": Authentication(spf=row.spf, dkim=row.dkim, dmarc=row.dmarc,
                                             results=row.authentication_results)}


async def _one(db: DbSession, team_id: uuid.UUID, email_id: str) -> Any:
    row = await repository.received_email(db, team_id, parse_id(email_id, "Email"))
    if row is None:
        raise ApiError(404, "not_found", "Email not found")
    return row


class ReceivedEmailController(Controller):
    """The team's received emails (those of its domains that receive), newest first."""

    path = "/emails/receiving"
    tags = ["Receiving"]
    dependencies = {"principal": Provide(provide_principal)}

    @get("/", operation_id="emails/receiving/list")
    async def list_received(
        self, principal: NamedDependency[Principal], db_session: DbSession, limit: Limit = 20,
        after: FromQuery[str | None] = None, before: FromQuery[str | None] = None,
    ) -> ReceivedEmailList:
        """A page of received emails: `after` walks to older ones, `before` to newer ones."""
        if after is not None and before is not None:
            raise ApiError(422, "validation_error", "use after or before, not both")
        rows, has_more = await repository.received_page(db_session, principal.team_id, limit,
                                                        cursor_id(after, "after"), cursor_id(before, "before"))
        return ReceivedEmailList(data=[ReceivedEmailListItem(**_shown(r)) for r in rows], has_more=has_more)

    @get("/{email_id:str}", operation_id="emails/receiving/get")
    async def get_received(
        self, email_id: FromPath[str], principal: NamedDependency[Principal], db_session: DbSession,
    ) -> ReceivedEmailOut:
        """One received email with its bodies, headers, attachments and verdicts."""
        row = await _one(db_session, principal.team_id, email_id)
        raw = bytes(row.mime)
        html, text = bodies_of(raw)
        return ReceivedEmailOut(**_shown(row), html=html, text=text, headers=headers_of(raw),
                                envelope_from=row.envelope_from, envelope_to=list(row.envelope_recipients))

    @get("/{email_id:str}/attachments", operation_id="emails/receiving/attachments/list")
    async def list_attachments(
        self, request: Request[Any, Any, Any], email_id: FromPath[str], principal: NamedDependency[Principal],
        db_session: DbSession, limit: Limit = 20, after: FromQuery[str | None] = None,
        before: FromQuery[str | None] = None,
    ) -> AttachmentList:
        """The received email's attachments in the message's order, with download links valid for an hour."""
        row = await _one(db_session, principal.team_id, email_id)
        items, has_more = page_of(_attachments(row), limit, after, before)
        signer = link_signer(request, DOWNLOAD_PURPOSE)
        return AttachmentList(data=[attachment_out(request, signer, principal.team_id, row.id, a,
                                                   f"/emails/receiving/{row.id}") for a in items], has_more=has_more)

    @get("/{email_id:str}/attachments/{attachment_id:str}", operation_id="emails/receiving/attachments/get")
    async def get_attachment(
        self, request: Request[Any, Any, Any], email_id: FromPath[str], attachment_id: FromPath[str],
        principal: NamedDependency[Principal], db_session: DbSession,
    ) -> AttachmentOut:
        """One attachment of a received email, with a download link valid for an hour."""
        row = await _one(db_session, principal.team_id, email_id)
        item = one_attachment(_attachments(row), attachment_id)
        return attachment_out(request, link_signer(request, DOWNLOAD_PURPOSE), principal.team_id, row.id, item,
                              f"/emails/receiving/{row.id}")

    @get("/{email_id:str}/attachments/{attachment_id:str}/content",
         operation_id="emails/receiving/attachments/download", include_in_schema=False)
    async def download(
        self, request: Request[Any, Any, Any], email_id: FromPath[str], attachment_id: FromPath[str],
        db_session: DbSession, token: FromQuery[str] = "",
    ) -> Response[bytes]:
        """The attachment's bytes, for whoever holds a link that is signed, unexpired and made for it."""
        await limit_per_ip(request, "attachment-download")
        eid, aid = parse_id(email_id, "Email"), parse_id(attachment_id, "Attachment")
        try:
            team_id = read_download_token(link_signer(request, DOWNLOAD_PURPOSE), token, eid, aid)
        except (BadLink, ValueError, TypeError):
            raise ApiError(403, "invalid_link", "This download link is not valid or has expired") from None
        await scope_to_team(db_session, team_id)
        row = await _one(db_session, team_id, email_id)
        return download_response(one_attachment(_attachments(row), attachment_id))
