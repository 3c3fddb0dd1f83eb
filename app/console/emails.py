"""The team's emails: the activity log, a message with its events, headers and content, cancel and reschedule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from litestar import MediaType, Request, Response, get, post
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from app.console import email_queries, email_source
from app.console.auth import ConsoleUser, CurrentUser, TeamPrincipal
from app.console.email_queries import EmailFilters
from app.console.forms import form_data, parse_form
from app.console.render import redirect, render, render_error
from app.domain.emails import services
from app.domain.emails.schemas import EmailUpdate
from app.domain.events.recorder import EVENT_TYPES
from app.lib.api_error import ApiError
from app.lib.auth import Principal
from app.lib.dependencies import DbSession
from app.lib.headers import EMAIL_PREVIEW_CSP
from app.lib.ids import parse_id

__all__ = ["EMAIL_HANDLERS"]

LOG_PATH = "/console/emails"
# Event details worth a label of their own, in the order shown; any other key is shown under its name.
DETAIL_LABELS = {"status": "Status", "dsn": "DSN", "reply": "Remote reply", "diagnostic": "Diagnostic",
                 "relay": "Relay", "reason": "Reason", "feedback_type": "Feedback type",
                 "scheduled_at": "Scheduled for", "test": "Test mode"}


def _shown(value: datetime | str | None) -> str:
    """A time in UTC, as the console writes times."""
    if value is None:
        return ""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _cursor(value: str | None, name: str) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(422, "validation_error", f"{name} must be an email id") from None


def _link(filters: EmailFilters, **cursor: uuid.UUID | None) -> str | None:
    """The log's address for the page next to this one (None where the log ends), keeping the filters."""
    name, value = next(iter(cursor.items()))
    return None if value is None else f"{LOG_PATH}?{urlencode({**filters.query(), name: str(value)})}"


async def _log_page(request: Request[Any, Any, Any], user: ConsoleUser, db: AsyncSession, principal: Principal,
                    page: email_queries.Page | None, filters: EmailFilters, error: ApiError | None) -> Response[Any]:
    context: dict[str, Any] = {
        "title": "Emails", "values": {name: request.query_params.get(name) or "" for name in
                                      email_queries.FILTER_FIELDS},
        "statuses": EVENT_TYPES, "domains": await email_queries.team_domains(db, principal.team_id),
        "filtered": bool(filters.query()),
        "rows": [{"id": r.id, "created": _shown(r.created_at), "created_iso": r.created_at.isoformat(),
                  "from": r.from_address, "to": ", ".join(r.to_addresses), "subject": r.subject,
                  "last_event": r.last_event,
                  "tags": [f"{t['name']}:{t['value']}" if t.get("value") else t["name"] for t in r.tags or []]}
                 for r in (page.rows if page else [])],
        "newer": _link(filters, before=page.newer) if page else None,
        "older": _link(filters, after=page.older) if page else None,
    }
    if error is not None:
        return await render_error(request, user, "emails.html.j2", error, **context)
    return await render(request, user, "emails.html.j2", **context)


@get("/emails", name="console:emails")
async def email_log(request: Request[Any, Any, Any], console_user: CurrentUser, principal: TeamPrincipal,
                    db_session: DbSession) -> Response[Any]:
    """The team's emails, newest first, 50 a page, narrowed by recipient, last event, tag, domain and dates."""
    query = request.query_params
    try:
        filters = EmailFilters.from_query(query)
        after, before = _cursor(query.get("after"), "after"), _cursor(query.get("before"), "before")
    except ApiError as exc:
        return await _log_page(request, console_user, db_session, principal, None, EmailFilters(), exc)
    page = await email_queries.email_page(db_session, principal.team_id, filters, after=after,
                                          before=None if after else before)
    return await _log_page(request, console_user, db_session, principal, page, filters, None)


def _detail(detail: dict[str, Any]) -> list[tuple[str, str]]:
    known = [(label, detail[key]) for key, label in DETAIL_LABELS.items() if key in detail]
    other = [(key, value) for key, value in sorted(detail.items()) if key not in DETAIL_LABELS]
    return [(label, "yes" if value is True else str(value)) for label, value in known + other
            if value is not None and value != ""]


async def _message(db: AsyncSession, principal: Principal, email_id: uuid.UUID) -> dict[str, Any]:
    """The message page's context: the API's view of the email (404 for another team's) and its stored content."""
    email = await services.get_email(db, principal.team_id, email_id)
    content = await email_queries.stored_content(db, principal.team_id, email_id)
    if content is None:  # deleted between the two reads
        raise ApiError(404, "not_found", "Email not found")
    mime = content.mime
    source, cut = email_source.source_text(mime) if mime is not None else (None, False)
    scheduled = content.state == "queued" and content.scheduled_at is not None \
        and content.scheduled_at > datetime.now(UTC)
    return {
        "title": email.subject or "Email", "email": email, "state": content.state,
        "created": _shown(email.created_at), "scheduled_for": _shown(content.scheduled_at),
        "scheduled": scheduled,
        "schedule_value": content.scheduled_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        if content.scheduled_at else "",
        "events": [{"type": e.type, "at": _shown(e.created_at), "at_iso": e.created_at, "recipient": e.recipient,
                    "detail": _detail(e.detail)} for e in email.events or []],
        "header_fields": email_source.headers(mime) if mime is not None else [],
        "purged": content.purged_at is not None, "purged_at": _shown(content.purged_at),
        "has_html": content.html is not None, "text": email.text if isinstance(email.text, str) else None,
        "source": source, "source_cut": cut,
        "source_limit_kb": email_source.SOURCE_LIMIT // 1024,
    }


@get("/emails/{email_id:str}", name="console:email")
async def email_view(request: Request[Any, Any, Any], email_id: FromPath[str], console_user: CurrentUser,
                     principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """One email: its addresses and tags, its events as a timeline, its headers and (within retention) its content."""
    context = await _message(db_session, principal, parse_id(email_id, "Email"))
    return await render(request, console_user, "email.html.j2", **context)


async def _stored(db: AsyncSession, principal: Principal, email_id: str) -> Any:
    content = await email_queries.stored_content(db, principal.team_id, parse_id(email_id, "Email"))
    if content is None:
        raise ApiError(404, "not_found", "Email not found")
    return content


@get("/emails/{email_id:str}/html", name="console:email-html")
async def email_html(email_id: FromPath[str], principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """The email's HTML for the message page's sandboxed frame, under a CSP that runs no script and loads nothing
    from anywhere (inline styles and data: images only)."""
    content = await _stored(db_session, principal, email_id)
    if content.html is None:
        raise ApiError(404, "not_found", "This email has no HTML body, or it is no longer kept")
    return Response(content.html, media_type=MediaType.HTML,
                    headers={"Content-Security-Policy": EMAIL_PREVIEW_CSP, "X-Frame-Options": "SAMEORIGIN"})


@get("/emails/{email_id:str}/source", name="console:email-source")
async def email_source_file(email_id: FromPath[str], principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """The email's whole MIME source, as a file to save."""
    content = await _stored(db_session, principal, email_id)
    if content.mime is None:
        raise ApiError(404, "not_found", "This email's source is no longer kept")
    return Response(bytes(content.mime), media_type="message/rfc822",
                    headers={"Content-Disposition": f'attachment; filename="{parse_id(email_id, "Email")}.eml"'})


async def _change(request: Request[Any, Any, Any], user: ConsoleUser, principal: Principal, db: AsyncSession,
                  email_id: str, flash: str, **form: str) -> Response[Any]:
    """Cancel (`form` empty) or reschedule (`form` has scheduled_at) with the API's services; the message page
    again with the refusal, or a redirect to it."""
    uid = parse_id(email_id, "Email")
    try:
        principal.require_write()
        if "scheduled_at" in form:
            update = parse_form(form, EmailUpdate)
            await services.reschedule(db, principal.team_id, uid, update.scheduled_at)
        else:
            await services.cancel(db, principal.team_id, uid)
    except ApiError as exc:
        context = await _message(db, principal, uid)
        if "scheduled_at" in form:
            context["schedule_value"] = form["scheduled_at"]
        return await render_error(request, user, "email.html.j2", exc, **context)
    return await redirect(request, user, db, f"{LOG_PATH}/{uid}", flash=flash)


@post("/emails/{email_id:str}/cancel", name="console:email-cancel")
async def cancel_email(request: Request[Any, Any, Any], email_id: FromPath[str], console_user: CurrentUser,
                       principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """Cancel a scheduled email, as POST /emails/{id}/cancel."""
    return await _change(request, console_user, principal, db_session, email_id,
                         "The email was canceled; it will not be sent.")


@post("/emails/{email_id:str}/reschedule", name="console:email-reschedule")
async def reschedule_email(request: Request[Any, Any, Any], email_id: FromPath[str], console_user: CurrentUser,
                           principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """Move a scheduled email to another time, as PATCH /emails/{id} with scheduled_at."""
    data = await form_data(request)
    return await _change(request, console_user, principal, db_session, email_id, "The email was rescheduled.",
                         scheduled_at=data.get("scheduled_at", ""))


EMAIL_HANDLERS = [email_log, email_view, email_html, email_source_file, cancel_email, reschedule_email]
