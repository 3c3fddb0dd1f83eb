"""What an instance's operators do to teams: list them, approve, suspend and resume them, set their sending
quotas, invite new teams; and who the operators are.

The API (an operator's session, whose transaction sees every team through the `operator_access` policies)
and the CLI on a host (the database owner) call these same functions. Every change to a team is audited
on that team.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

import anyio
from msgspec import UNSET, UnsetType
from sqlalchemy import ScalarSelect, Select, column, func, select, table, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Invite, Membership, Team, User
from app.domain.emails.admission import period_starts
from app.domain.teams import invites
from app.lib.api_error import ApiError
from app.lib.audit import record
from app.lib.hashing import hash_password

__all__ = [
    "MAX_REASON_LENGTH",
    "Actor",
    "TeamSummary",
    "approve_team",
    "create_operator",
    "find_team",
    "invite_team",
    "list_new_team_invites",
    "list_operators",
    "list_teams",
    "remove_operator",
    "resume_team",
    "revoke_new_team_invite",
    "set_quotas",
    "suspend_team",
]

logger = logging.getLogger("postyard.operators")

MAX_REASON_LENGTH = 500  # teams.suspension_reason's CHECK

_counters = table("team_send_counters", column("team_id"), column("period"), column("period_start"),
                  column("sent"))


@dataclass(frozen=True)
class Actor:
    """Who acts: an operator's session (user_id), or the CLI on a host (user_id None)."""

    user_id: uuid.UUID | None = None
    ip: str | None = None

    @property
    def audit(self) -> tuple[str, str | None]:
        """(actor type, actor id) for the audit log."""
        return ("operator", str(self.user_id)) if self.user_id else ("cli", None)


@dataclass(frozen=True)
class TeamSummary:
    """A team, how many members it has and how much it sent in the current quota periods."""

    team: Team
    members: int
    sent_today: int
    sent_this_month: int


def _sent(period: str, start: date) -> ScalarSelect[int]:
    return (select(func.coalesce(func.sum(_counters.c.sent), 0))
            .where(_counters.c.team_id == Team.id, _counters.c.period == period, _counters.c.period_start == start)
            .scalar_subquery())


def _summaries() -> Select[tuple[Team, int, int, int]]:
    """Teams, their member counts and their counts of the current quota periods (kept while a quota is set)."""
    members = select(func.count()).select_from(Membership).where(Membership.team_id == Team.id).scalar_subquery()
    starts = period_starts(datetime.now(UTC))
    return select(Team, members, _sent("day", starts["day"]), _sent("month", starts["month"]))


async def list_teams(db: AsyncSession) -> list[TeamSummary]:
    """Every team, oldest first."""
    rows = (await db.execute(_summaries().order_by(Team.created_at, Team.id))).all()
    return [TeamSummary(team, int(m), int(d), int(mo)) for team, m, d, mo in rows]


async def _summary(db: AsyncSession, team_id: uuid.UUID) -> TeamSummary:
    row = (await db.execute(_summaries().where(Team.id == team_id).execution_options(populate_existing=True))
           ).first()
    if row is None:
        raise ApiError(404, "not_found", "Team not found")
    return TeamSummary(row[0], int(row[1]), int(row[2]), int(row[3]))


async def find_team(db: AsyncSession, ref: str) -> uuid.UUID:
    """A team's id from its id or its exact name (404 when none, 409 when several teams have that name)."""
    try:
        return uuid.UUID(ref)
    except ValueError:
        pass
    found = list((await db.execute(select(Team.id).where(Team.name == ref).limit(2))).scalars())
    if not found:
        raise ApiError(404, "not_found", "Team not found")
    if len(found) > 1:
        raise ApiError(409, "conflict", "Several teams have this name; use the team's id")
    return found[0]


async def _team(db: AsyncSession, team_id: uuid.UUID) -> Team:
    team = (await db.execute(select(Team).where(Team.id == team_id).with_for_update())).scalar_one_or_none()
    if team is None:
        raise ApiError(404, "not_found", "Team not found")
    return team


def _reason(reason: str) -> str:
    """The reason as the team sees it (an API message, an SMTP reply): one line of printable text."""
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON_LENGTH:
        raise ApiError(422, "validation_error", f"reason must be 1 to {MAX_REASON_LENGTH} characters")
    if not reason.isprintable():
        raise ApiError(422, "validation_error", "reason must be one line without control characters")
    return reason


async def suspend_team(db: AsyncSession, actor: Actor, team_id: uuid.UUID, reason: str) -> TeamSummary:
    """Suspend the team with a reason it sees (again: the new reason, the first time kept). From the commit on,
    its sends are refused on every path and the outbox holds its queued and scheduled mail
    (app/domain/emails/admission.py, outbox.py)."""
    reason = _reason(reason)
    team = await _team(db, team_id)
    was = team.suspension_reason
    team.suspended_at = team.suspended_at or datetime.now(UTC)
    team.suspension_reason = reason
    await record(db, team_id=team.id, actor=actor.audit, action="team.suspended", resource_type="team",
                 resource_id=team.id, ip=actor.ip, details={"reason": reason, "was": was})
    await db.flush()
    return await _summary(db, team.id)


async def resume_team(db: AsyncSession, actor: Actor, team_id: uuid.UUID) -> TeamSummary:
    """Lift the team's suspension (and clear its reason); its held mail goes out."""
    team = await _team(db, team_id)
    if team.suspended_at is not None:
        await record(db, team_id=team.id, actor=actor.audit, action="team.resumed", resource_type="team",
                     resource_id=team.id, ip=actor.ip, details={"reason": team.suspension_reason})
        team.suspended_at, team.suspension_reason = None, None
        await db.flush()
        # Delivered at commit: workers waiting on LISTEN pick up the held mail now, not at their next poll.
        await db.execute(text("SELECT pg_notify('postyard_outbox', '')"))
    return await _summary(db, team.id)


async def approve_team(db: AsyncSession, actor: Actor, team_id: uuid.UUID) -> TeamSummary:
    """Let a team that signed up on an open instance send."""
    team = await _team(db, team_id)
    if team.approved_at is None:
        team.approved_at = datetime.now(UTC)
        await record(db, team_id=team.id, actor=actor.audit, action="team.approved", resource_type="team",
                     resource_id=team.id, ip=actor.ip)
        await db.flush()
    return await _summary(db, team.id)


async def set_quotas(
    db: AsyncSession, actor: Actor, team_id: uuid.UUID, *, daily: int | None | UnsetType = UNSET,
    monthly: int | None | UnsetType = UNSET,
) -> TeamSummary:
    """Set the team's messages per UTC day and per UTC month (None: unlimited; unset: unchanged)."""
    for value in (daily, monthly):
        if isinstance(value, int) and value < 0:
            raise ApiError(422, "validation_error", "A quota is a number of messages, 0 or more")
    team = await _team(db, team_id)
    changes = {name: value for name, value in (("daily_quota", daily), ("monthly_quota", monthly))
               if value is not UNSET and getattr(team, name) != value}
    if changes:
        await record(db, team_id=team.id, actor=actor.audit, action="team.quotas_changed", resource_type="team",
                     resource_id=team.id, ip=actor.ip,
                     details={**changes, "was": {name: getattr(team, name) for name in changes}})
        for name, value in changes.items():
            setattr(team, name, value)
        await db.flush()
    return await _summary(db, team.id)


async def invite_team(db: AsyncSession, actor: Actor, email: str | None, ttl_hours: int) -> tuple[Invite, str]:
    """An invite to start a new team, its user its owner (and approved); the token is shown once."""
    invite, token = await invites.create_invite(db, team_id=None, email=email, role="owner", ttl_hours=ttl_hours,
                                                created_by=actor.user_id)
    # No team exists yet to audit this on: the team's audit log names the invite when it is used.
    logger.info("team invite created", extra={"invite_id": str(invite.id), "actor": actor.audit[0],
                                              "actor_id": actor.audit[1]})
    return invite, token


async def list_new_team_invites(db: AsyncSession) -> list[Invite]:
    """Invites to start a team, newest first."""
    return await invites.list_invites(db, None)


async def revoke_new_team_invite(db: AsyncSession, actor: Actor, invite_id: uuid.UUID) -> Invite:
    """Revoke an unused invite to start a team."""
    invite = await invites.revoke_invite(db, invite_id, None)
    logger.info("team invite revoked", extra={"invite_id": str(invite.id), "actor": actor.audit[0],
                                              "actor_id": actor.audit[1]})
    return invite


async def list_operators(db: AsyncSession) -> list[User]:
    """The instance's operators, oldest first."""
    return list((await db.execute(select(User).where(User.is_operator).order_by(User.created_at))).scalars())


async def create_operator(db: AsyncSession, email: str, only_if_none: bool = False) -> tuple[User, str | None]:
    """Make the address an operator: a new account with a random password (returned, to show once), or an
    existing account (its password unchanged, None returned). With `only_if_none`, an instance that has
    an operator already keeps it (that operator is returned, nothing changes), and an existing account
    is refused: the first operator is always a new account."""
    if only_if_none:
        first = (await db.execute(select(User).where(User.is_operator).order_by(User.created_at).limit(1))
                 ).scalar_one_or_none()
        if first is not None:
            return first, None
    user = (await db.execute(select(User).where(User.email == email).with_for_update())).scalar_one_or_none()
    if user is not None and only_if_none:
        # Whoever registered this address before the instance had an operator must not become one.
        raise ApiError(409, "conflict", f"An account with the address {email} exists already; make the first "
                                        "operator under another address (POSTYARD_OPERATOR_EMAIL)")
    if user is not None:
        user.is_operator = True
        await db.flush()
        return user, None
    password = secrets.token_urlsafe(18)
    user = User(id=uuid.uuid4(), email=email, password_hash=await anyio.to_thread.run_sync(hash_password, password),
                totp_enabled=False, is_operator=True)
    db.add(user)
    await db.flush()
    return user, password


async def remove_operator(db: AsyncSession, email: str) -> User:
    """Take the operator role from an account (the account stays); the last operator stays one."""
    user = (await db.execute(select(User).where(User.email == email, User.is_operator))).scalar_one_or_none()
    if user is None:
        raise ApiError(404, "not_found", "No operator has this email")
    if len(await list_operators(db)) == 1:
        raise ApiError(409, "conflict", "An instance keeps at least one operator")
    user.is_operator = False
    await db.flush()
    return user
