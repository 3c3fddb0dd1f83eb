"""The operators' pages: every team with its state, volume and quotas; suspend, resume, approve, set quotas,
invite a team; and the system's status. The same services, audit and refusals as the API's /operator routes."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote

from litestar import Request, Response, get, post
from litestar.params import FromPath
from msgspec import UNSET

from app.console.actions import Done, run_change
from app.console.auth import ConsoleUser, CurrentUser
from app.console.forms import form_data, parse_form
from app.console.render import render, render_error
from app.domain.accounts.services import normalise_email
from app.domain.operators import services, system_status
from app.domain.operators.schemas import Quotas, Suspension, TeamInviteCreate
from app.domain.operators.status_checks import summary
from app.domain.teams.invites import invite_status
from app.lib.api_error import ApiError
from app.lib.auth import services as app_services
from app.lib.dependencies import DbSession
from app.lib.ids import parse_id

__all__ = ["OPERATOR_HANDLERS", "TeamRow", "team_state"]

HOME = "/console/operator"


def _operator(user: ConsoleUser) -> services.Actor:
    """The acting operator, as the API's operator routes name them in the audit log; 403 for anyone else, with
    the API's refusal."""
    if not user.is_operator:
        raise ApiError(403, "operator_required", "This route is for the instance's operators")
    return services.Actor(user_id=user.user_id, ip=user.ip)


def team_state(summary: services.TeamSummary) -> str:
    """active, awaiting approval or suspended."""
    if summary.team.suspended_at is not None:
        return "suspended"
    return "awaiting approval" if summary.team.approved_at is None else "active"


def _use(sent: int, quota: int | None) -> int | None:
    """The percentage of a quota used (None: unlimited)."""
    if quota is None:
        return None
    return 100 if quota == 0 else min(100, round(100 * sent / quota))


@dataclass(frozen=True)
class TeamRow:
    """A team as the pages show it."""

    summary: services.TeamSummary
    state: str
    daily_use: int | None
    monthly_use: int | None

    @classmethod
    def of(cls, summary: services.TeamSummary) -> TeamRow:
        """The summary with its state and quota use."""
        team = summary.team
        return cls(summary, team_state(summary), _use(summary.sent_today, team.daily_quota),
                   _use(summary.sent_this_month, team.monthly_quota))


async def _teams_page(request: Request[Any, Any, Any], user: ConsoleUser, db_session: DbSession,
                      exc: ApiError | None = None, **context: Any) -> Response[Any]:
    teams = [TeamRow.of(s) for s in await services.list_teams(db_session)]
    invites = [(i, invite_status(i)) for i in await services.list_new_team_invites(db_session)]
    values = {"title": "Teams", "teams": teams, "invites": invites, "invite_email": "", **context}
    if exc is not None:
        return await render_error(request, user, "operator.html.j2", exc, **values)
    return await render(request, user, "operator.html.j2", **values)


async def _team_page(request: Request[Any, Any, Any], user: ConsoleUser, db_session: DbSession, team_id: str,
                     exc: ApiError | None = None) -> Response[Any]:
    wanted = parse_id(team_id, "Team")
    found = [s for s in await services.list_teams(db_session) if s.team.id == wanted]
    if not found:
        raise ApiError(404, "not_found", "Team not found")
    context = {"title": found[0].team.name, "row": TeamRow.of(found[0])}
    if exc is not None:
        return await render_error(request, user, "operator_team.html.j2", exc, **context)
    return await render(request, user, "operator_team.html.j2", **context)


@get("/operator", name="console:operator")
async def teams(request: Request[Any, Any, Any], console_user: CurrentUser, db_session: DbSession) -> Response[Any]:
    """Every team: its state, what it sent today and this month against its quotas; invites to start a team."""
    _operator(console_user)
    return await _teams_page(request, console_user, db_session)


@get("/operator/teams/{team_id:str}", name="console:operator-team")
async def team(request: Request[Any, Any, Any], team_id: FromPath[str], console_user: CurrentUser,
               db_session: DbSession) -> Response[Any]:
    """One team: its state, volume and quotas, with the forms that change them."""
    _operator(console_user)
    return await _team_page(request, console_user, db_session, team_id)


async def _change_team(request: Request[Any, Any, Any], user: ConsoleUser, db_session: DbSession, team_id: str,
                       change: Callable[[services.Actor, uuid.UUID], Awaitable[services.TeamSummary]],
                       said: Callable[[str], str]) -> Response[Any]:
    """`change` made by the acting operator to the team, then the team's page with `said(its name)`; a refusal
    shows the team's page with the API's message."""
    actor = _operator(user)

    async def made() -> Done:
        changed = await change(actor, parse_id(team_id, "Team"))
        return Done(f"{HOME}/teams/{team_id}", said(changed.team.name))

    return await run_change(request, user, db_session, made,
                            lambda exc: _team_page(request, user, db_session, team_id, exc))


@post("/operator/teams/{team_id:str}/suspend", name="console:operator-suspend")
async def suspend(request: Request[Any, Any, Any], team_id: FromPath[str], console_user: CurrentUser,
                  db_session: DbSession) -> Response[Any]:
    """Suspend the team with a reason it sees, like `POST /operator/teams/{id}/suspend`."""
    async def with_reason(actor: services.Actor, team: uuid.UUID) -> services.TeamSummary:
        reason = parse_form(await form_data(request), Suspension).reason
        return await services.suspend_team(db_session, actor, team, reason)

    return await _change_team(request, console_user, db_session, team_id, with_reason,
                              lambda name: f"{name} is suspended.")


@post("/operator/teams/{team_id:str}/resume", name="console:operator-resume")
async def resume(request: Request[Any, Any, Any], team_id: FromPath[str], console_user: CurrentUser,
                 db_session: DbSession) -> Response[Any]:
    """Lift the team's suspension, like `POST /operator/teams/{id}/resume`."""
    return await _change_team(request, console_user, db_session, team_id, partial(services.resume_team, db_session),
                              lambda name: f"{name} is resumed; its held mail goes out.")


@post("/operator/teams/{team_id:str}/approve", name="console:operator-approve")
async def approve(request: Request[Any, Any, Any], team_id: FromPath[str], console_user: CurrentUser,
                  db_session: DbSession) -> Response[Any]:
    """Let the team send, like `POST /operator/teams/{id}/approve`."""
    return await _change_team(request, console_user, db_session, team_id, partial(services.approve_team, db_session),
                              lambda name: f"{name} is approved.")


@post("/operator/teams/{team_id:str}/quotas", name="console:operator-quotas")
async def set_quotas(request: Request[Any, Any, Any], team_id: FromPath[str], console_user: CurrentUser,
                     db_session: DbSession) -> Response[Any]:
    """Set both quotas, like `PATCH /operator/teams/{id}/quotas`; an empty field is unlimited."""
    async def both(actor: services.Actor, team: uuid.UUID) -> services.TeamSummary:
        quotas = parse_form(await form_data(request), Quotas)
        return await services.set_quotas(db_session, actor, team, daily=None if quotas.daily is UNSET else quotas.daily,
                                         monthly=None if quotas.monthly is UNSET else quotas.monthly)

    return await _change_team(request, console_user, db_session, team_id, both,
                              lambda name: f"Quotas of {name} saved.")


@post("/operator/invites", name="console:operator-invite")
async def invite_team(request: Request[Any, Any, Any], console_user: CurrentUser,
                      db_session: DbSession) -> Response[Any]:
    """Invite someone to start a team, like `POST /operator/invites`: the link is shown once, on this page."""
    actor = _operator(console_user)
    data = await form_data(request)
    try:
        form = parse_form(data, TeamInviteCreate)
        email = normalise_email(form.email) if form.email is not None else None
        ttl = form.expires_in_hours or app_services(request).settings.invite_ttl_hours
        async with db_session.begin_nested():
            invite, token = await services.invite_team(db_session, actor, email, ttl)
    except ApiError as exc:
        return await _teams_page(request, console_user, db_session, exc, invite_email=data.get("email", ""))
    await db_session.commit()  # the token is shown once: the invite must exist before the page does
    link = f"{str(request.base_url).rstrip('/')}/console/invites/accept?token={quote(token)}"
    return await render(request, console_user, "operator_invite.html.j2", status=201, title="Team invite",
                        invite=invite, link=link)


@post("/operator/invites/{invite_id:str}/revoke", name="console:operator-invite-revoke")
async def revoke_invite(request: Request[Any, Any, Any], invite_id: FromPath[str], console_user: CurrentUser,
                        db_session: DbSession) -> Response[Any]:
    """Revoke an unused invite to start a team, like `DELETE /operator/invites/{id}`."""
    actor = _operator(console_user)

    async def revoke() -> Done:
        await services.revoke_new_team_invite(db_session, actor, parse_id(invite_id, "Invite"))
        return Done(HOME, "The invite is revoked.")

    return await run_change(request, console_user, db_session, revoke,
                            lambda exc: _teams_page(request, console_user, db_session, exc))


@get("/operator/status", name="console:operator-status")
async def status(request: Request[Any, Any, Any], console_user: CurrentUser, db_session: DbSession) -> Response[Any]:
    """The system's status: what this API host sees (database, Redis, certificates, mail queue per mail host,
    release), then each host's own report (services, disks, certificates, reverse DNS, Postfix's queue, backups)."""
    _operator(console_user)
    svc = app_services(request)
    found = await system_status.run_checks(db_session, svc.redis, svc.settings.database_url)
    return await render(request, console_user, "operator_status.html.j2", title="System status", checks=found.checks,
                        hosts=found.hosts, counts=summary(found.all_checks))


OPERATOR_HANDLERS = [teams, team, suspend, resume, approve, set_quotas, invite_team, revoke_invite, status]
