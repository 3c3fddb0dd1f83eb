"""Routes of /team: the caller's team, its rate limits and its members."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Membership
from app.domain.accounts.services import normalise_email
from app.domain.teams import services
from app.domain.teams.schemas import MemberAdd, MemberList, MemberOut, MemberRole, TeamOut, TeamUpdate
from app.lib.audit import record
from app.lib.auth import Principal, forget_team_limits, provide_principal
from app.lib.errors import ApiError
from app.lib.ids import parse_id

__all__ = ["TeamController"]


def _out(m: Membership, email: str) -> MemberOut:
    return MemberOut(id=str(m.id), user_id=str(m.user_id), email=email, role=m.role)


def _grantable(principal: Principal, role: str) -> None:
    principal.require_write()
    if role == "owner" and principal.api_key_id is None and principal.role != "owner":
        raise ApiError(403, "insufficient_role", "Only an owner can grant or change the owner role")


class TeamController(Controller):
    """The caller's team."""

    path = "/team"
    tags = ["Teams"]
    dependencies = {"principal": Provide(provide_principal)}

    @get("/", operation_id="team/get")
    async def get_team(self, principal: Principal, db_session: AsyncSession) -> TeamOut:
        """The team and its rate limits."""
        team = await services.get_team(db_session, principal.team_id)
        return TeamOut(id=str(team.id), name=team.name, rate_limit=team.rate_limit,
                       api_key_rate_limit=team.api_key_rate_limit, retention_days=team.retention_days)

    @patch("/", operation_id="team/update")
    async def update_team(self, data: TeamUpdate, principal: Principal, db_session: AsyncSession) -> TeamOut:
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
        return TeamOut(id=str(team.id), name=team.name, rate_limit=team.rate_limit,
                       api_key_rate_limit=team.api_key_rate_limit, retention_days=team.retention_days)

    @get("/members", operation_id="team/members-list")
    async def list_members(self, principal: Principal, db_session: AsyncSession) -> MemberList:
        """The team's members and roles."""
        return MemberList(data=[_out(m, e) for m, e in await services.list_members(db_session, principal.team_id)])

    @post("/members", status_code=201, operation_id="team/members-add")
    async def add_member(self, data: MemberAdd, principal: Principal, db_session: AsyncSession) -> MemberOut:
        """Add an existing user to the team."""
        _grantable(principal, data.role)
        membership, email = await services.add_member(db_session, principal.team_id, normalise_email(data.email),
                                                      data.role)
        await record(db_session, team_id=principal.team_id, actor=principal.actor, action="member.added",
                     resource_type="membership", resource_id=membership.id, ip=principal.ip,
                     details={"user_id": str(membership.user_id), "role": data.role})
        return _out(membership, email)

    @patch("/members/{member_id:str}", operation_id="team/members-update")
    async def update_member(
        self, member_id: str, data: MemberRole, principal: Principal, db_session: AsyncSession
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
    async def remove_member(self, member_id: str, principal: Principal, db_session: AsyncSession) -> None:
        """Remove a member (the team always keeps an owner)."""
        membership, _ = await services.get_member(db_session, principal.team_id, parse_id(member_id, "Member"))
        _grantable(principal, membership.role)
        if membership.role == "owner" and not await services.owners_left(db_session, principal.team_id, membership.id):
            raise ApiError(409, "conflict", "A team keeps at least one owner")
        await record(db_session, team_id=principal.team_id, actor=principal.actor, action="member.removed",
                     resource_type="membership", resource_id=membership.id, ip=principal.ip,
                     details={"user_id": str(membership.user_id)})
        await db_session.delete(membership)
