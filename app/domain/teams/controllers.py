"""Routes of /team: the caller's team, its rate limits, its members and its invites; and /invites/accept."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from app.db.models import Membership
from app.domain.accounts.current_user import SessionUser, provide_session_user
from app.domain.accounts.schemas import SessionInfo
from app.domain.teams import changes, invites, services
from app.domain.teams.acceptance import accept_invite
from app.domain.teams.schemas import (
    InviteAccept,
    InviteCreate,
    InviteCreated,
    InviteList,
    InviteOut,
    MemberList,
    MemberOut,
    MemberRole,
    TeamOut,
    TeamUpdate,
)
from app.lib.anonymous_limits import limit_per_ip
from app.lib.auth import Principal, provide_principal
from app.lib.auth import services as app_services
from app.lib.dependencies import DbSession
from app.lib.ids import parse_id

__all__ = ["InviteController", "TeamController"]


def _out(m: Membership, email: str) -> MemberOut:
    return MemberOut(id=str(m.id), user_id=str(m.user_id), email=email, role=m.role)


class TeamController(Controller):
    """The caller's team."""

    path = "/team"
    tags = ["Teams"]
    dependencies = {"principal": Provide(provide_principal)}

    @get("/", operation_id="team/get")
    async def get_team(self, principal: NamedDependency[Principal], db_session: DbSession) -> TeamOut:
        """The team and its rate limits."""
        return TeamOut.of(await services.get_team(db_session, principal.team_id))

    @patch("/", operation_id="team/update")
    async def update_team(
        self, data: JSONBody[TeamUpdate], principal: NamedDependency[Principal], db_session: DbSession,
    ) -> TeamOut:
        """Rename the team, set its rate limits or its retention period."""
        return TeamOut.of(await changes.update_team(db_session, principal, data))

    @get("/members", operation_id="team/members-list")
    async def list_members(self, principal: NamedDependency[Principal], db_session: DbSession) -> MemberList:
        """The team's members and roles."""
        return MemberList(data=[_out(m, e) for m, e in await services.list_members(db_session, principal.team_id)])

    @post("/invites", status_code=201, operation_id="team/invites-create")
    async def create_invite(
        self, request: Request[Any, Any, Any], data: JSONBody[InviteCreate], principal: NamedDependency[Principal],
        db_session: DbSession,
    ) -> InviteCreated:
        """Invite someone to join the team with a role; the token is shown once."""
        ttl = data.expires_in_hours or app_services(request).settings.invite_ttl_hours
        invite, token = await changes.create_invite(db_session, principal, data.email, data.role, ttl)
        return InviteCreated.of(invite, token)

    @get("/invites", operation_id="team/invites-list")
    async def list_invites(self, principal: NamedDependency[Principal], db_session: DbSession) -> InviteList:
        """The team's invites (tokens are never shown again)."""
        return InviteList(data=[InviteOut.of(i) for i in await invites.list_invites(db_session, principal.team_id)])

    @delete("/invites/{invite_id:str}", status_code=204, operation_id="team/invites-revoke")
    async def revoke_invite(
        self, invite_id: FromPath[str], principal: NamedDependency[Principal], db_session: DbSession,
    ) -> None:
        """Revoke an invite that was not used yet."""
        await changes.revoke_invite(db_session, principal, parse_id(invite_id, "Invite"))

    @patch("/members/{member_id:str}", operation_id="team/members-update")
    async def update_member(
        self, member_id: FromPath[str], data: JSONBody[MemberRole], principal: NamedDependency[Principal],
        db_session: DbSession,
    ) -> MemberOut:
        """Change a member's role (the team always keeps an owner)."""
        membership, email = await changes.change_role(db_session, principal, parse_id(member_id, "Member"),
                                                         data.role)
        return _out(membership, email)

    @delete("/members/{member_id:str}", status_code=204, operation_id="team/members-remove")
    async def remove_member(
        self, member_id: FromPath[str], principal: NamedDependency[Principal], db_session: DbSession,
    ) -> None:
        """Remove a member (the team always keeps an owner)."""
        await changes.remove_member(db_session, principal, parse_id(member_id, "Member"))


class InviteController(Controller):
    """Invites, from the invitee's side."""

    path = "/invites"
    tags = ["Teams"]

    @post("/accept", status_code=200, operation_id="invites/accept",
          dependencies={"user": Provide(provide_session_user)})
    async def accept(
        self, request: Request[Any, Any, Any], data: JSONBody[InviteAccept], user: NamedDependency[SessionUser],
        db_session: DbSession,
    ) -> SessionInfo:
        """Accept an invite as the logged-in user: join its team (or start the team an operator's invite is
        for); the session moves to that team."""
        await limit_per_ip(request, "invite-accept")
        accepted = await accept_invite(db_session, data.token, data.team_name, user.user_id, user.email,
                                       user.session_id, user.ip)
        return SessionInfo(user_id=str(user.user_id), email=user.email, mfa_required=False,
                           team_id=str(accepted.team_id), role=accepted.role, csrf_token=accepted.csrf_token,
                           totp_enabled=user.totp_enabled)
