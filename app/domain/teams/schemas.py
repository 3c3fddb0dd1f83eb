"""Request and response bodies of /team."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from app.db.models import Invite, Team
from app.domain.teams.invites import invite_status
from app.lib.request_body import RequestBody

__all__ = ["InviteAccept", "InviteCreate", "InviteCreated", "InviteList", "InviteOut", "MemberList", "MemberOut",
           "MemberRole", "TeamOut", "TeamUpdate"]

Role = Literal["owner", "admin", "member"]
Limit = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]


class TeamOut(msgspec.Struct):
    """The caller's team, its rate limits (None: the server default), and what its operator set: whether it
    may send (approved, not suspended) and its sending quotas (None: unlimited)."""

    id: str
    name: str
    rate_limit: int | None
    api_key_rate_limit: int | None
    retention_days: int = 30
    approved: bool = True
    suspended: bool = False
    suspension_reason: str | None = None
    daily_quota: int | None = None
    monthly_quota: int | None = None

    @classmethod
    def of(cls, team: Team) -> TeamOut:
        """The team's fields."""
        return cls(id=str(team.id), name=team.name, rate_limit=team.rate_limit,
                   api_key_rate_limit=team.api_key_rate_limit, retention_days=team.retention_days,
                   approved=team.approved_at is not None, suspended=team.suspended_at is not None,
                   suspension_reason=team.suspension_reason, daily_quota=team.daily_quota,
                   monthly_quota=team.monthly_quota)


class TeamUpdate(RequestBody):
    """New name, rate limits (requests per window) or retention of message bodies (days) for the team."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    rate_limit: Limit | None = None
    api_key_rate_limit: Limit | None = None
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None


class MemberOut(msgspec.Struct):
    """A member and their role."""

    id: str
    user_id: str
    email: str
    role: str


class MemberList(msgspec.Struct):
    """The team's members."""

    data: list[MemberOut]
    object: str = "list"


class InviteCreate(RequestBody):
    """An invite to join the team with a role; with an email, only that address can use it."""

    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320,
                                       extra_json_schema={"format": "email"})] | None = None
    role: Role = "member"
    expires_in_hours: Annotated[int, msgspec.Meta(ge=1, le=720)] | None = None


class InviteOut(msgspec.Struct):
    """An invite: pending, used, revoked or expired."""

    id: str
    team_id: str | None
    email: str | None
    role: str
    status: str
    expires_at: str
    created_at: str

    @classmethod
    def of(cls, invite: Invite) -> InviteOut:
        """The invite's fields and status."""
        return cls(id=str(invite.id), team_id=str(invite.team_id) if invite.team_id else None, email=invite.email,
                   role=invite.role, status=invite_status(invite), expires_at=invite.expires_at.isoformat(),
                   created_at=invite.created_at.isoformat())


class InviteCreated(msgspec.Struct):
    """A new invite and its token, shown once: the invitee signs up with it (POST /auth/register with
    `invite`) or, already logged in, accepts it (POST /invites/accept)."""

    id: str
    team_id: str | None
    email: str | None
    role: str
    expires_at: str
    token: str

    @classmethod
    def of(cls, invite: Invite, token: str) -> InviteCreated:
        """The new invite and its token."""
        return cls(id=str(invite.id), team_id=str(invite.team_id) if invite.team_id else None, email=invite.email,
                   role=invite.role, expires_at=invite.expires_at.isoformat(), token=token)


class InviteList(msgspec.Struct):
    """Invites, newest first."""

    data: list[InviteOut]
    object: str = "list"


class InviteAccept(RequestBody):
    """An invite token; `team_name` names the team an operator's invite starts."""

    token: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    team_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class MemberRole(RequestBody):
    """A member's new role."""

    role: Role
