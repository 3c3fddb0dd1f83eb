"""`postyard-api admin ...`: the operator's commands on a host, through the same services as /operator.

They connect as the database owner (a shell on a host is the operator's own access) and are audited with
the actor `cli`. Tokens and passwords are printed once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db.engines import create_engine
from app.domain.accounts.services import normalise_email
from app.domain.emails import repository as emails_repository
from app.domain.operators import host_reports, services
from app.domain.operators.schemas import OperatorOut, TeamStatus
from app.domain.teams.schemas import InviteOut
from app.lib.api_error import ApiError
from app.lib.ids import parse_id

__all__ = ["add_admin_commands", "in_owner_transaction", "run_admin"]

T = TypeVar("T")
CLI = services.Actor()


def _quota(text: str) -> int | None:
    """A quota argument: a number of messages, or `none`/`unlimited`."""
    if text.lower() in ("none", "unlimited"):
        return None
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("a quota is 0 or more messages")
    return value


# A mail host whose log follower wrote more recently than this is not taken for lost without --force.
LOST_AFTER_SECONDS = 600


def add_admin_commands(sub: Any) -> None:
    """Add `admin` and its commands to the CLI's subparsers."""
    admin = sub.add_parser("admin", help="operator commands: teams, suspension, quotas, invites, operators")
    commands = admin.add_subparsers(dest="admin_command", required=True)
    teams = commands.add_parser("teams", help="list every team: approval, suspension, quotas, members, sent")
    teams.add_argument("--json", action="store_true", help="one JSON object per line")
    suspend = commands.add_parser("suspend", help="suspend a team: its sends are refused, its queued mail held")
    suspend.add_argument("team", help="the team's id (or its exact name)")
    suspend.add_argument("--reason", required=True, help="why (the team sees it when a send is refused)")
    for name, text in (("resume", "lift a team's suspension"), ("approve", "let a team of open sign-up send")):
        commands.add_parser(name, help=text).add_argument("team", help="the team's id (or its exact name)")
    quota = commands.add_parser("set-quota", help="set a team's messages per UTC day and month")
    quota.add_argument("team", help="the team's id (or its exact name)")
    quota.add_argument("--daily", type=_quota, default=msgspec.UNSET, help="messages per day, or `none`")
    quota.add_argument("--monthly", type=_quota, default=msgspec.UNSET, help="messages per month, or `none`")
    invite = commands.add_parser("invite-team", help="an invite to start a new team; prints its token once")
    invite.add_argument("--email", help="only this address may use it")
    invite.add_argument("--expires-hours", type=int, default=None, help="hours until it expires")
    commands.add_parser("invites", help="list the invites to start a team")
    revoke = commands.add_parser("revoke-invite", help="revoke an unused invite to start a team")
    revoke.add_argument("invite", help="the invite's id")
    operator = commands.add_parser("create-operator", help="make an operator; prints a new account's password once")
    operator.add_argument("email")
    operator.add_argument("--first", action="store_true",
                          help="only if the instance has no operator yet (what `up` runs)")
    commands.add_parser("operators", help="list the operators")
    remove = commands.add_parser("remove-operator", help="take the operator role from an account")
    remove.add_argument("email")
    commands.add_parser("hosts", help="list the hosts that report their status, and when each last did")
    forget = commands.add_parser("forget-host", help="remove the status reports of a host taken out of service")
    forget.add_argument("host", help="the host's name, as `hosts` lists it")
    release = commands.add_parser(
        "release-mail-host", help="queue again the emails a mail host lost for good was submitting, whose "
                                  "outcome its log can no longer show (each may then be sent twice)")
    release.add_argument("host", help="the mail host's name (its host name, as its worker records it)")
    release.add_argument("--force", action="store_true",
                         help=f"even though its log follower wrote within {LOST_AFTER_SECONDS // 60} minutes")


async def in_owner_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work(db)` in one transaction as the database owner (what every admin command does)."""
    engine = create_engine(settings.owner_database_url, settings, "postyard-admin")
    try:
        async with AsyncSession(engine, expire_on_commit=False) as db, db.begin():
            return await work(db)
    finally:
        await engine.dispose()


def _team_line(status: TeamStatus) -> str:
    state = ("suspended: " + (status.suspension_reason or "")) if status.suspended_at else \
        "active" if status.approved_at else "awaiting approval"
    quota = f"{status.daily_quota if status.daily_quota is not None else '-'}/day " \
            f"{status.monthly_quota if status.monthly_quota is not None else '-'}/month"
    return (f"{status.id}  {status.name}  created {status.created_at[:10]}  {state}  quota {quota}  "
            f"members {status.members}  sent {status.sent_today} today, {status.sent_this_month} this month")


async def _teams(args: argparse.Namespace, settings: Settings, db: AsyncSession) -> list[str]:
    found = [TeamStatus.of(s) for s in await services.list_teams(db)]
    if args.json:
        return [json.dumps(msgspec.to_builtins(s)) for s in found]
    return [_team_line(s) for s in found] or ["no teams"]


async def _suspend(args: argparse.Namespace, settings: Settings, db: AsyncSession) -> list[str]:
    summary = await services.suspend_team(db, CLI, await services.find_team(db, args.team), args.reason)
    return [_team_line(TeamStatus.of(summary))]


async def _resume(args: argparse.Namespace, settings: Settings, db: AsyncSession) -> list[str]:
    return [_team_line(TeamStatus.of(await services.resume_team(db, CLI, await services.find_team(db, args.team))))]


async def _approve(args: argparse.Namespace, settings: Settings, db: AsyncSession) -> list[str]:
    return [_team_line(TeamStatus.of(await services.approve_team(db, CLI, await services.find_team(db, args.team))))]


async def _set_quota(args: argparse.Namespace, settings: Settings, db: AsyncSession) -> list[str]:
    summary = await services.set_quotas(db, CLI, await services.find_team(db, args.team), daily=args.daily,
                                        monthly=args.monthly)
    return [_team_line(TeamStatus.of(summary))]


async def _invite_team(args: argparse.Namespace, settings: Settings, db: AsyncSession) -> list[str]:
    email = normalise_email(args.email) if args.email else None
    invite, token = await services.invite_team(db, CLI, email, args.expires_hours or settings.invite_ttl_hours)
    return [f"invite {invite.id} for {email or 'anyone'}, expires {invite.expires_at.isoformat()}",
            f"invite token (shown once): {token}",
            'sign up with it: POST /auth/register {"invite": "<token>", "email", "password", "team_name"}']


async def _invites(args: argparse.Namespace, settings: Settings, db: AsyncSession) -> list[str]:
    found = [InviteOut.of(i) for i in await services.list_new_team_invites(db)]
    return [f"{i.id}  {i.email or 'anyone'}  {i.status}  expires {i.expires_at}" for i in found] or ["no invites"]


async def _revoke_invite(args: argparse.Namespace, settings: Settings, db: AsyncSession) -> list[str]:
    invite = await services.revoke_new_team_invite(db, CLI, parse_id(args.invite, "Invite"))
    return [f"invite {invite.id} revoked"]


async def _create_operator(args: argparse.Namespace, settings: Settings, db: AsyncSession) -> list[str]:
    user, password = await services.create_operator(db, normalise_email(args.email), only_if_none=args.first)
    if password is None:
        return [f"operator: {user.email} (already an operator or an account: its password is unchanged)"]
    return [f"operator: {user.email}", f"operator password (shown once): {password}"]


async def _operators(args: argparse.Namespace, settings: Settings, db: AsyncSession) -> list[str]:
    found = [OperatorOut.of(u) for u in await services.list_operators(db)]
    return [f"{o.id}  {o.email}  2fa {'on' if o.totp_enabled else 'off'}  since {o.created_at[:10]}"
            for o in found] or ["no operators"]


async def _remove_operator(args: argparse.Namespace, settings: Settings, db: AsyncSession) -> list[str]:
    user = await services.remove_operator(db, normalise_email(args.email))
    return [f"{user.email} is no longer an operator"]


async def _hosts(args: argparse.Namespace, settings: Settings, db: AsyncSession) -> list[str]:
    found = await host_reports.list_reports(db)
    return [f"{r.host_name}  from {r.address}  reported {r.reported_at.isoformat(timespec='seconds')}"
            for r in found] or ["no host has reported"]


async def _forget_host(args: argparse.Namespace, settings: Settings, db: AsyncSession) -> list[str]:
    count = await host_reports.forget_host(db, args.host)
    return [f"{args.host}: {count} report{'s' if count != 1 else ''} removed"]


async def _release_mail_host(args: argparse.Namespace, settings: Settings, db: AsyncSession) -> list[str]:
    silent = await emails_repository.log_silent_seconds(db, args.host)
    if silent is not None and silent < LOST_AFTER_SECONDS and not args.force:
        raise ApiError(409, "mail_host_alive",
                       f"{args.host}'s log follower wrote {silent:.0f} s ago: the host is not lost, and its log "
                       "will settle its emails (--force to release them anyway)")
    released, leased = await emails_repository.release_mail_host(db, args.host)
    lines = [f"{args.host}: {released} email{'s' if released != 1 else ''} queued again"]
    if leased:
        lines.append(f"{args.host}: {leased} still leased; run this again once the lease has ended "
                     f"({settings.worker_lease_seconds:g} s)")
    return lines


_COMMANDS: dict[str, Callable[[argparse.Namespace, Settings, AsyncSession], Awaitable[list[str]]]] = {
    "teams": _teams, "suspend": _suspend, "resume": _resume, "approve": _approve, "set-quota": _set_quota,
    "invite-team": _invite_team, "invites": _invites, "revoke-invite": _revoke_invite,
    "create-operator": _create_operator, "operators": _operators, "remove-operator": _remove_operator,
    "hosts": _hosts, "forget-host": _forget_host, "release-mail-host": _release_mail_host,
}


def run_admin(args: argparse.Namespace, settings: Settings) -> int:
    """Run `postyard-api admin <command>`; a refusal prints its reason and exits 1."""
    try:
        lines = asyncio.run(in_owner_transaction(
            settings, lambda db: _COMMANDS[args.admin_command](args, settings, db)))
    except ApiError as error:
        print(f"postyard-api admin {args.admin_command}: {error.detail}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0
