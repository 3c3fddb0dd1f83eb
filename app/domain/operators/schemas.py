"""Request and response bodies of /operator."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from app.db.models import User
from app.domain.operators.services import TeamSummary
from app.domain.operators.status_checks import Check, HostStatus, summary
from app.domain.operators.system_status import SystemStatus
from app.lib.request_body import RequestBody

__all__ = [
    "CheckOut", "HostStatusOut", "OperatorList", "OperatorOut", "Quotas", "Suspension", "SystemStatusOut",
    "TeamInviteCreate", "TeamList", "TeamStatus",
]

Quota = Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class TeamStatus(msgspec.Struct):
    """A team as its operator sees it: approval, suspension, quotas (None: unlimited), members, and the emails
    counted against its quotas in the current UTC day and month (counted while the quota is set)."""

    id: str
    name: str
    created_at: str
    approved_at: str | None
    suspended_at: str | None
    suspension_reason: str | None
    daily_quota: int | None
    monthly_quota: int | None
    members: int
    sent_today: int
    sent_this_month: int

    @classmethod
    def of(cls, summary: TeamSummary) -> TeamStatus:
        """The summary's fields."""
        team = summary.team
        return cls(id=str(team.id), name=team.name, created_at=team.created_at.isoformat(),
                   approved_at=_iso(team.approved_at), suspended_at=_iso(team.suspended_at),
                   suspension_reason=team.suspension_reason, daily_quota=team.daily_quota,
                   monthly_quota=team.monthly_quota, members=summary.members, sent_today=summary.sent_today,
                   sent_this_month=summary.sent_this_month)


class TeamList(msgspec.Struct):
    """Every team of the instance, oldest first."""

    data: list[TeamStatus]
    object: str = "list"


class Suspension(RequestBody):
    """Why the team is suspended (the team sees this reason when its sends are refused)."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class Quotas(RequestBody):
    """Messages per UTC day and per UTC month: a number, null for unlimited, or absent to leave it."""

    daily: Quota | None | msgspec.UnsetType = msgspec.UNSET
    monthly: Quota | None | msgspec.UnsetType = msgspec.UNSET


class TeamInviteCreate(RequestBody):
    """An invite to start a new team (its user becomes the owner); with an email, only that address can use it."""

    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320,
                                       extra_json_schema={"format": "email"})] | None = None
    expires_in_hours: Annotated[int, msgspec.Meta(ge=1, le=720)] | None = None


class OperatorOut(msgspec.Struct):
    """An operator of the instance."""

    id: str
    email: str
    totp_enabled: bool
    created_at: str

    @classmethod
    def of(cls, user: User) -> OperatorOut:
        """The user's fields."""
        return cls(id=str(user.id), email=user.email, totp_enabled=user.totp_enabled,
                   created_at=user.created_at.isoformat())


class OperatorList(msgspec.Struct):
    """The instance's operators."""

    data: list[OperatorOut]
    object: str = "list"


class CheckOut(msgspec.Struct):
    """One status check: what was checked, its state and why."""

    name: str
    status: Literal["ok", "warning", "error", "unknown"]
    reason: str

    @classmethod
    def of(cls, check: Check) -> CheckOut:
        return cls(name=check.name, status=check.status, reason=check.reason)  # type: ignore[arg-type]


class HostStatusOut(msgspec.Struct):
    """One host's checks, from the report it sent at `reported_at` (its address is where the report came from)."""

    name: str
    address: str
    reported_at: str
    checks: list[CheckOut]

    @classmethod
    def of(cls, host: HostStatus) -> HostStatusOut:
        return cls(name=host.name, address=host.address, reported_at=host.reported_at.isoformat(),
                   checks=[CheckOut.of(c) for c in host.checks])


class SystemStatusOut(msgspec.Struct):
    """The system's status: how many checks are in each state, the API host's own checks, then each host's."""

    summary: dict[str, int]
    checks: list[CheckOut]
    hosts: list[HostStatusOut]

    @classmethod
    def of(cls, found: SystemStatus) -> SystemStatusOut:
        return cls(summary=summary(found.all_checks), checks=[CheckOut.of(c) for c in found.checks],
                   hosts=[HostStatusOut.of(h) for h in found.hosts])
