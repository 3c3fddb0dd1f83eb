"""Routes of /team: the caller's team, its rate limits, its members and its invites; and /invites/accept."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from app.db.models import Membership
from app.domain.accounts.current_user import SessionUser, provide_session_user
from app.domain.accounts.schemas import SessionInfo
from app.domain.accounts.services import normalise_email
from app.domain.teams import invites, services
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
from app.lib.audit import record
from app.lib.auth import Principal, forget_team_limits, provide_principal
from app.lib.auth import services as app_services
from app.lib.dependencies import DbSession
from app.lib.errors import ApiError
from app.lib.ids import parse_id

__all__ = ["InviteController", "TeamController"]


def _out(m: Membership, email: str) -> MemberOut:
    return MemberOut(id=str(m.id), user_id=str(m.user_id), email=email, role=m.role)


def _grantable(principal: Principal, role: str) -> None:
    principal.require_write()
    # A key is not a person: it must not mint an owner who outlives the key's revocation.
    if role == "owner" and (principal.api_key_id is not None or principal.role != "owner"):
        raise ApiError(403, "insufficient_role", "Only an owner, logged in, can grant or change the owner role")


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
        principal.require_write()
        team = await services.get_team(db_session, principal.team_id)
        changes = {k: v for k, v in (("name", data.name), ("rate_limit", data.rate_limit),
                                     ("api_key_rate_limit", data.api_key_rate_limit),
                                     ("retention_days", data.retention_days)) if v is not None}
        for field, value in changes.items():
            setattr(team, field, value)
        if changes:
            forget_team_limits(team.id)
            await record(db_session, team_id=team.id, actor=principal.actor, action="team.updated",
                         resource_type="team", resource_id=team.id, ip=principal.ip, details=changes)
        return TeamOut.of(team)

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
        _grantable(principal, data.role)
        email = normalise_email(data.email) if data.email is not None else None
        ttl = data.expires_in_hours or app_services(request).settings.invite_ttl_hours
        user_id = principal.user_id if principal.api_key_id is None else None
        invite, token = await invites.create_invite(db_session, team_id=principal.team_id, email=email,
                                                    role=data.role, ttl_hours=ttl, created_by=user_id)
        await record(db_session, team_id=principal.team_id, actor=principal.actor, action="invite.created",
                     resource_type="invite", resource_id=invite.id, ip=principal.ip,
                     details={"email": email, "role": data.role, "expires_at": invite.expires_at.isoformat()})
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
        principal.require_write()
        invite = await invites.revoke_invite(db_session, parse_id(invite_id, "Invite"), principal.team_id)
        await record(db_session, team_id=principal.team_id, actor=principal.actor, action="invite.revoked",
                     resource_type="invite", resource_id=invite.id, ip=principal.ip)

    @patch("/members/{member_id:str}", operation_id="team/members-update")
    async def update_member(
        self, member_id: FromPath[str], data: JSONBody[MemberRole], principal: NamedDependency[Principal],
        db_session: DbSession,
    ) -> MemberOut:
        """Change a member's role (the team always keeps an owner)."""
        membership, email = await services.get_member(db_session, principal.team_id, parse_id(member_id, "Member"))
        _grantable(principal, "owner" if "owner" in (data.role, membership.role) else data.role)
        if membership.role == "owner" and data.role != "owner" and \
                not await services.owners_left(db_session, principal.team_id, membership.id):
            raise ApiError(409, "conflict", "A team keeps at least one owner")
        await record(db_session, team_id=principal.team_id, actor=principal.actor, action="member.role_changed",
                     resource_type="membership", resource_id=membership.id, ip=principal.ip,
                     details={"role": data.role, "was": membership.role})
        membership.role = data.role
        return _out(membership, email)

    @delete("/members/{member_id:str}", status_code=204, operation_id="team/members-remove")
    async def remove_member(
        self, member_id: FromPath[str], principal: NamedDependency[Principal], db_session: DbSession,
    ) -> None:
        """Remove a member (the team always keeps an owner)."""
        membership, _ = await services.get_member(db_session, principal.team_id, parse_id(member_id, "Member"))
        _grantable(principal, membership.role)
        if membership.role == "owner" and not await services.owners_left(db_session, principal.team_id, membership.id):
            raise ApiError(409, "conflict", "A team keeps at least one owner")
        await record(db_session, team_id=principal.team_id, actor=principal.actor, action="member.removed",
                     resource_type="membership", resource_id=membership.id, ip=principal.ip,
                     details={"user_id": str(membership.user_id)})
        await db_session.delete(membership)


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
