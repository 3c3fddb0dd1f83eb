"""`POST /emails/{email_id}/share` (a team's key makes a link) and `/shared` (the page the link opens, for
anyone who holds it until it expires)."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import MediaType
from litestar.params import FromPath, FromQuery, JSONBody

from app.db.tenancy import scope_to_team
from app.domain.emails import repository
from app.domain.emails.schemas import EmailShare, EmailShared
from app.domain.emails.sharing import SHARE_PURPOSE, parse_expires_in, read_share_token, share_token
from app.lib.anonymous_limits import limit_per_ip
from app.lib.api_error import ApiError
from app.lib.auth import Principal, provide_principal
from app.lib.auth import services as app_services
from app.lib.dependencies import DbSession
from app.lib.headers import EMAIL_PREVIEW_CSP
from app.lib.ids import parse_id
from app.lib.signed_links import BadLink, LinkSigner, absolute_link
from app.lib.timefmt import iso

__all__ = ["SharedEmailController", "ShareEmailController"]

# The shared page: no script, no style, no remote load; it frames only its own sandboxed HTML body.
_PAGE_CSP = "default-src 'none'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def _signer(request: Request[Any, Any, Any]) -> LinkSigner:
    return LinkSigner(app_services(request).keyring, SHARE_PURPOSE)


class ShareEmailController(Controller):
    """Make a shared link to one of the team's emails."""

    path = "/emails/{email_id:str}/share"
    tags = ["Emails"]
    dependencies = {"principal": Provide(provide_principal)}

    @post("/", status_code=200, operation_id="emails/share")
    async def share(self, request: Request[Any, Any, Any], email_id: FromPath[str],
                    principal: NamedDependency[Principal], db_session: DbSession,
                    data: JSONBody[EmailShare | None] = None) -> EmailShared:
        """A link anyone can open until it expires (`expires_in`, at most and by default 48 hours)."""
        principal.require_write()
        eid = parse_id(email_id, "Email")
        if await repository.find_email(db_session, principal.team_id, eid) is None:
            raise ApiError(404, "not_found", "Email not found")
        expires_at = datetime.now(UTC) + parse_expires_in(data.expires_in if data else None)
        token = share_token(_signer(request), principal.team_id, eid, expires_at)
        return EmailShared(id=str(eid), url=absolute_link(request, f"/shared?token={token}"),
                           expires_at=iso(expires_at) or "")


async def _shared(request: Request[Any, Any, Any], db: DbSession, token: str) -> Any:
    await limit_per_ip(request, "shared-email")
    try:
        team_id, email_id = read_share_token(_signer(request), token)
    except (BadLink, ValueError, TypeError):
        raise ApiError(403, "invalid_link", "This link is not valid or has expired") from None
    await scope_to_team(db, team_id)
    row = await repository.find_email(db, team_id, email_id)
    if row is None:
        raise ApiError(404, "not_found", "This email is no longer kept")
    return row


def _page(row: Any, token: str) -> str:
    fields = [("From", row.from_address), ("To", ", ".join(row.to_addresses)), ("Subject", row.subject),
              ("Date", iso(row.created_at) or "")]
    listed = "".join(f"<dt>{name}</dt><dd>{html.escape(value)}</dd>" for name, value in fields)
    frame = (f'<iframe sandbox title="HTML body" src="/shared/html?token={quote(token, safe="")}" width="100%" '
             'height="600"></iframe>') if row.html is not None else ""
    text = f"<pre>{html.escape(row.text_body)}</pre>" if row.text_body is not None else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(row.subject)}'
            f'</title></head><body><dl>{listed}</dl>{frame}{text}</body></html>')


class SharedEmailController(Controller):
    """The page a shared link opens, and its sandboxed HTML body."""

    path = "/shared"
    include_in_schema = False

    @get("/", operation_id="shared/page")
    async def page(self, request: Request[Any, Any, Any], db_session: DbSession,
                   token: FromQuery[str] = "") -> Response[str]:
        """The shared email: its headers and text, its HTML in a sandboxed frame."""
        row = await _shared(request, db_session, token)
        return Response(_page(row, token), media_type=MediaType.HTML, headers={"Content-Security-Policy": _PAGE_CSP})

    @get("/html", operation_id="shared/html")
    async def body(self, request: Request[Any, Any, Any], db_session: DbSession,
                   token: FromQuery[str] = "") -> Response[str]:
        """The shared email's HTML, sandboxed: no script, no remote load, framed by the shared page only."""
        row = await _shared(request, db_session, token)
        if row.html is None:
            raise ApiError(404, "not_found", "This email has no HTML body, or it is no longer kept")
        return Response(row.html, media_type=MediaType.HTML,
                        headers={"Content-Security-Policy": EMAIL_PREVIEW_CSP, "X-Frame-Options": "SAMEORIGIN"})
