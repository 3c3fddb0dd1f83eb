"""The team page: members with their roles and two-factor status, role changes and removal, invites (with their
validity), the team's name, rate limits and retention, and the audit log, on the services /team and /audit-logs
use."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, get_args
from urllib.parse import quote, urlencode

from litestar import Request, Response, get, post
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.console.auth import ConsoleUser, CurrentUser, TeamPrincipal
from app.console.forms import day_bounds, form_data, parse_days, parse_form
from app.console.render import redirect, render, render_error
from app.domain.audit import services as audit
from app.domain.teams import changes, invites, services
from app.domain.teams.schemas import InviteCreate, InviteOut, MemberRole, Role, TeamOut, TeamUpdate
from app.lib.api_error import ApiError
from app.lib.auth import Principal
from app.lib.auth import services as app_services
from app.lib.dependencies import DbSession
from app.lib.ids import parse_id

__all__ = ["ROLES", "TEAM_HANDLERS", "AuditQuery"]

ROLES: tuple[str, ...] = get_args(Role)
TEAM = "/console/team"
INVITE_PATH = "/console/invites/accept"
Text = Annotated[str | None, QueryParameter(required=False, max_length=200)]


@dataclass(frozen=True)
class AuditQuery:
    """The audit log's filters as typed in the page's form (dates as YYYY-MM-DD)."""

    action: str = ""
    actor: str = ""
    since: str = ""
    until: str = ""

    def params(self) -> dict[str, str]:
        """The filters that are set, for links."""
        return {k: v for k, v in (("action", self.action), ("actor", self.actor), ("since", self.since),
                                  ("until", self.until)) if v}

    def audit_filter(self) -> audit.AuditFilter:
        """The service's filter; `until` is the last day included. 422 for a date that is not YYYY-MM-DD, or
        since after until."""
        since, until = day_bounds(*parse_days(self.since, self.until))
        return audit.AuditFilter(action=self.action or None, actor_id=self.actor or None, since=since, until=until)


def _defaults(request: Request[Any, Any, Any]) -> dict[str, int]:
    """The instance's settings the team page shows: rate limits a team has not set, and an invite's validity."""
    settings = app_services(request).settings
    return {"rate_limit": settings.rate_limit, "api_key_rate_limit": settings.api_key_rate_limit,
            "window": settings.rate_limit_window, "invite_hours": settings.invite_ttl_hours}


def _invite_link(request: Request[Any, Any, Any], token: str) -> str:
    return f"{str(request.base_url).rstrip('/')}{INVITE_PATH}?token={quote(token)}"


def _details(details: dict[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(", ", ": ")) if details else ""


async def _team_page(request: Request[Any, Any, Any], user: ConsoleUser, principal: Principal, db: AsyncSession,
                     exc: ApiError | None = None, query: AuditQuery | None = None, after: str | None = None,
                     per_page: int = 20, **form: Any) -> Response[Any]:
    """The whole page; with `exc`, its message under its status (and the audit log unfiltered when the filter
    was the problem)."""
    query = query or AuditQuery()
    members = await services.list_members(db, principal.team_id)
    two_factor = await changes.two_factor_by_user(db, principal.team_id)
    emails = {str(m.user_id): email for m, email in members}
    try:
        only = query.audit_filter()
        cursor = parse_id(after, "Audit log entry") if after else None
    except ApiError as bad:
        exc, query, only, cursor = exc or bad, AuditQuery(), None, None
    entries, more = await audit.page(db, principal.team_id, per_page, cursor, only)
    following = None
    if more and entries:
        following = f"{TEAM}?{urlencode({**query.params(), 'per_page': per_page, 'after': entries[-1].id})}#audit"
    context: dict[str, Any] = {
        "title": "Team", "team_out": TeamOut.of(await services.get_team(db, principal.team_id)),
        "members": [{"id": m.id, "email": email, "role": m.role, "two_factor": two_factor.get(m.user_id, False),
                     "is_self": m.user_id == user.user_id} for m, email in members],
        "invites": [InviteOut.of(i) for i in await invites.list_invites(db, principal.team_id)],
        "entries": [{"entry": e, "actor": emails.get(e.actor_id or "", e.actor_id or ""),
                     "details": _details(e.details)} for e in entries],
        "newest": f"{TEAM}?{urlencode(query.params())}#audit" if cursor else None,
        "query": query, "actors": sorted(emails.items(), key=lambda item: item[1]), "following": following,
        "per_page": per_page, "roles": ROLES, "invite_email": "", "invite_role": "member",
        "defaults": _defaults(request), "invite_hours": "", **form,
    }
    if exc is not None:
        return await render_error(request, user, "team.html.j2", exc, **context)
    return await render(request, user, "team.html.j2", **context)


@get("/team", name="console:team")
async def team(request: Request[Any, Any, Any], console_user: CurrentUser, principal: TeamPrincipal,
               db_session: DbSession, action: Text = None, actor: Text = None, since: Text = None,
               until: Text = None, after: Text = None,
               per_page: Annotated[int, QueryParameter(ge=1, le=100)] = 20) -> Response[Any]:
    """Members, invites, the retention setting and the audit log (filtered by action, actor and dates, a page at
    a time, newest first)."""
    query = AuditQuery(action=action or "", actor=actor or "", since=since or "", until=until or "")
    return await _team_page(request, console_user, principal, db_session, query=query, after=after,
                            per_page=per_page)


@post("/team/settings", name="console:team-settings")
async def team_settings(request: Request[Any, Any, Any], console_user: CurrentUser, principal: TeamPrincipal,
                        db_session: DbSession) -> Response[Any]:
    """Rename the team, set its rate limits or the retention period of message bodies like `PATCH /team` (an
    empty field leaves its setting as it is)."""
    try:
        principal.require_write()
        data = await form_data(request)
        fields = {k: data.get(k, "") for k in TeamUpdate.__struct_fields__}
        await changes.update_team(db_session, principal, parse_form(fields, TeamUpdate))
    except ApiError as exc:
        return await _team_page(request, console_user, principal, db_session, exc)
    return await redirect(request, console_user, db_session, TEAM, flash="The team's settings are saved.")


@post("/team/members/{member_id:str}/role", name="console:member-role")
async def member_role(request: Request[Any, Any, Any], member_id: FromPath[str], console_user: CurrentUser,
                      principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """Give a member another role like `PATCH /team/members/{id}`."""
    try:
        principal.require_write()
        role = parse_form(await form_data(request), MemberRole).role
        _, email = await changes.change_role(db_session, principal, parse_id(member_id, "Member"), role)
    except ApiError as exc:
        return await _team_page(request, console_user, principal, db_session, exc)
    return await redirect(request, console_user, db_session, TEAM, flash=f"{email} is now {role}.")


@post("/team/members/{member_id:str}/remove", name="console:member-remove")
async def member_remove(request: Request[Any, Any, Any], member_id: FromPath[str], console_user: CurrentUser,
                        principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """Remove a member like `DELETE /team/members/{id}`."""
    try:
        principal.require_write()
        await changes.remove_member(db_session, principal, parse_id(member_id, "Member"))
    except ApiError as exc:
        return await _team_page(request, console_user, principal, db_session, exc)
    return await redirect(request, console_user, db_session, TEAM, flash="The member is removed.")


@post("/team/invites", name="console:invite-create")
async def invite_create(request: Request[Any, Any, Any], console_user: CurrentUser, principal: TeamPrincipal,
                        db_session: DbSession) -> Response[Any]:
    """Invite someone like `POST /team/invites` (valid for `expires_in_hours`, else the instance's default); the
    link with its token is shown on this answer only."""
    data = await form_data(request)
    try:
        principal.require_write()
        form = parse_form({k: data.get(k, "") for k in InviteCreate.__struct_fields__}, InviteCreate)
        ttl = form.expires_in_hours or app_services(request).settings.invite_ttl_hours
        invite, token = await changes.create_invite(db_session, principal, form.email, form.role, ttl)
    except ApiError as exc:
        return await _team_page(request, console_user, principal, db_session, exc,
                                invite_email=data.get("email", ""), invite_role=data.get("role", "member"),
                                invite_hours=data.get("expires_in_hours", ""))
    return await render(request, console_user, "team_invite.html.j2", title="Invite", invite=InviteOut.of(invite),
                        link=_invite_link(request, token))


@post("/team/invites/{invite_id:str}/revoke", name="console:invite-revoke")
async def invite_revoke(request: Request[Any, Any, Any], invite_id: FromPath[str], console_user: CurrentUser,
                        principal: TeamPrincipal, db_session: DbSession) -> Response[Any]:
    """Revoke an invite that was not used yet like `DELETE /team/invites/{id}`."""
    try:
        principal.require_write()
        await changes.revoke_invite(db_session, principal, parse_id(invite_id, "Invite"))
    except ApiError as exc:
        return await _team_page(request, console_user, principal, db_session, exc)
    return await redirect(request, console_user, db_session, TEAM, flash="The invite is revoked.")


TEAM_HANDLERS = [team, team_settings, member_role, member_remove, invite_create, invite_revoke]
