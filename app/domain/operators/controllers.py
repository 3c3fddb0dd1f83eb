"""Routes of /operator: the instance's teams, their approval, suspension and quotas, invites to start a
team, and the list of operators. Only an operator's session gets in (403 for everyone else)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from app.domain.accounts.current_user import SessionUser
from app.domain.accounts.services import normalise_email
from app.domain.operators import services, system_status
from app.domain.operators.access import provide_operator
from app.domain.operators.schemas import (
    OperatorList,
    OperatorOut,
    Quotas,
    Suspension,
    SystemStatusOut,
    TeamInviteCreate,
    TeamList,
    TeamStatus,
)
from app.domain.teams.schemas import InviteCreated, InviteList, InviteOut
from app.lib.auth import services as app_services
from app.lib.dependencies import DbSession
from app.lib.ids import parse_id

__all__ = ["OperatorController"]


def _actor(operator: SessionUser) -> services.Actor:
    return services.Actor(user_id=operator.user_id, ip=operator.ip)


class OperatorController(Controller):
    """What the instance's operators do (the CLI's `postyard-api admin ...` does the same)."""

    path = "/operator"
    tags = ["Operators"]
    dependencies = {"operator": Provide(provide_operator)}

    @get("/teams", operation_id="operator/teams-list")
    async def list_teams(self, operator: NamedDependency[SessionUser], db_session: DbSession) -> TeamList:
        """Every team: approval, suspension, quotas, members and what it sent today and this month."""
        return TeamList(data=[TeamStatus.of(s) for s in await services.list_teams(db_session)])

    @post("/teams/{team_id:str}/suspend", status_code=200, operation_id="operator/teams-suspend")
    async def suspend(self, team_id: FromPath[str], data: JSONBody[Suspension], operator: NamedDependency[SessionUser],
                      db_session: DbSession) -> TeamStatus:
        """Suspend a team with a reason: its sends are refused and its queued mail is held."""
        return TeamStatus.of(await services.suspend_team(db_session, _actor(operator), parse_id(team_id, "Team"),
                                                         data.reason))

    @post("/teams/{team_id:str}/resume", status_code=200, operation_id="operator/teams-resume")
    async def resume(
        self, team_id: FromPath[str], operator: NamedDependency[SessionUser], db_session: DbSession,
    ) -> TeamStatus:
        """Lift a team's suspension; its held mail goes out."""
        return TeamStatus.of(await services.resume_team(db_session, _actor(operator), parse_id(team_id, "Team")))

    @post("/teams/{team_id:str}/approve", status_code=200, operation_id="operator/teams-approve")
    async def approve(
        self, team_id: FromPath[str], operator: NamedDependency[SessionUser], db_session: DbSession,
    ) -> TeamStatus:
        """Let a team that signed up on an open instance send."""
        return TeamStatus.of(await services.approve_team(db_session, _actor(operator), parse_id(team_id, "Team")))

    @patch("/teams/{team_id:str}/quotas", operation_id="operator/teams-quotas")
    async def set_quotas(self, team_id: FromPath[str], data: JSONBody[Quotas], operator: NamedDependency[SessionUser],
                         db_session: DbSession) -> TeamStatus:
        """Set a team's messages per UTC day and month (null: unlimited; absent: unchanged)."""
        return TeamStatus.of(await services.set_quotas(db_session, _actor(operator), parse_id(team_id, "Team"),
                                                       daily=data.daily, monthly=data.monthly))

    @post("/invites", status_code=201, operation_id="operator/invites-create")
    async def invite_team(
        self, request: Request[Any, Any, Any], data: JSONBody[TeamInviteCreate], operator: NamedDependency[SessionUser],
        db_session: DbSession,
    ) -> InviteCreated:
        """Invite someone to start a new team as its owner; the token is shown once."""
        email = normalise_email(data.email) if data.email is not None else None
        ttl = data.expires_in_hours or app_services(request).settings.invite_ttl_hours
        invite, token = await services.invite_team(db_session, _actor(operator), email, ttl)
        return InviteCreated.of(invite, token)

    @get("/invites", operation_id="operator/invites-list")
    async def list_invites(self, operator: NamedDependency[SessionUser], db_session: DbSession) -> InviteList:
        """Invites to start a team, newest first."""
        return InviteList(data=[InviteOut.of(i) for i in await services.list_new_team_invites(db_session)])

    @delete("/invites/{invite_id:str}", status_code=204, operation_id="operator/invites-revoke")
    async def revoke_invite(
        self, invite_id: FromPath[str], operator: NamedDependency[SessionUser], db_session: DbSession,
    ) -> None:
        """Revoke an unused invite to start a team."""
        await services.revoke_new_team_invite(db_session, _actor(operator), parse_id(invite_id, "Invite"))

    @get("/status", operation_id="operator/status")
    async def status(self, request: Request[Any, Any, Any], operator: NamedDependency[SessionUser],
                     db_session: DbSession) -> SystemStatusOut:
        """The system's status, as on the console's status page: the API host's checks (database, schema, mail
        queue per mail host, Redis, certificates, release), then each host's from its last report (services,
        disks, certificates, reverse DNS of sending addresses, Postfix's queue, backups)."""
        svc = app_services(request)
        return SystemStatusOut.of(await system_status.run_checks(db_session, svc.redis, svc.settings.database_url))

    @get("/operators", operation_id="operator/operators-list")
    async def list_operators(self, operator: NamedDependency[SessionUser], db_session: DbSession) -> OperatorList:
        """The instance's operators (new ones are made on a host: `postyard-api admin create-operator`)."""
        return OperatorList(data=[OperatorOut.of(u) for u in await services.list_operators(db_session)])
