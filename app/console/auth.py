"""Who is using the console: the session cookie, checked like the API's, with the CSRF token in a form field."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias
from urllib.parse import quote, urlsplit

from litestar import Request
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Membership, Session, Team, User
from app.db.tenancy import scope_to_team, scope_to_user
from app.domain.accounts.current_user import count_user_request
from app.lib.api_error import ApiError
from app.lib.auth import SESSION_COOKIE, Principal, client_ip, services
from app.lib.dependencies import DbSession
from app.lib.hashing import same, sha256

__all__ = ["CSRF_FIELD", "ConsoleUser", "CurrentUser", "NotSignedIn", "TeamPrincipal", "check_csrf", "check_origin",
           "live_session", "login_url", "provide_console_principal", "provide_console_user", "session_cookie"]

CSRF_FIELD = "csrf_token"
LOGIN_PATH = "/console/login"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class NotSignedIn(Exception):  # noqa: N818 - a redirect, not an error
    """No live session: the console answers with a redirect to the sign-in page."""

    def __init__(self, next_path: str | None = None):
        super().__init__("not signed in")
        self.next_path = next_path


def login_url(next_path: str | None = None) -> str:
    """The sign-in page, coming back to `next_path` (a console path) afterwards."""
    return f"{LOGIN_PATH}?next={quote(next_path, safe='/')}" if next_path else LOGIN_PATH


@dataclass(frozen=True)
class ConsoleUser:
    """A signed-in user (second factor done), their session, and the team the session is on (if any)."""

    user_id: uuid.UUID
    email: str
    is_operator: bool
    totp_enabled: bool
    session_id: uuid.UUID
    csrf_token: str
    ip: str
    principal: Principal | None = None
    team_name: str | None = None

    @property
    def can_write(self) -> bool:
        """Whether the user may change the team's resources (owner or admin), as the API decides."""
        if self.principal is None:
            return False
        try:
            self.principal.require_write()
        except ApiError:
            return False
        return True


def session_cookie(request: Request[Any, Any, Any], token: str) -> Cookie:
    """The session cookie the API sets: httpOnly, Secure, SameSite=Strict, for the session's lifetime."""
    settings = services(request).settings
    return Cookie(key=SESSION_COOKIE, value=token, max_age=settings.session_ttl, path="/", httponly=True,
                  secure=settings.cookie_secure, samesite="strict")


def check_origin(request: Request[Any, Any, Any]) -> None:
    """Refuse a form posted from another site (403): the browser says so in Sec-Fetch-Site or Origin. This
    guards the forms sent before there is a session (sign-in, sign-up) against login CSRF."""
    if request.method in _SAFE_METHODS:
        return
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    # Sec-Fetch-Site decides when the browser sends it: under `Referrer-Policy: no-referrer` Chromium sends
    # `Origin: null` with a same-origin form, so Origin is only looked at without Sec-Fetch-Site.
    if site is not None:
        refused = site not in ("same-origin", "none")
    else:
        refused = origin is not None and urlsplit(origin).hostname != request.url.hostname
    if refused:
        raise ApiError(403, "csrf_failed", "The form was sent from another site")


async def check_csrf(request: Request[Any, Any, Any], expected: str) -> None:
    """Refuse a state-changing request from another site, or whose form does not carry the session's CSRF
    token (403)."""
    if request.method in _SAFE_METHODS:
        return
    check_origin(request)
    submitted = (await request.form()).get(CSRF_FIELD, "")
    if not isinstance(submitted, str) or not same(submitted, expected):
        raise ApiError(403, "csrf_failed", "The form is missing its security token or it is out of date; "
                                           "reload the page and try again")


async def live_session(request: Request[Any, Any, Any], db: AsyncSession) -> Session | None:
    """The signed-in session of the cookie (second factor done), if it is live."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    session = (await db.execute(select(Session).where(Session.token_hash == sha256(token)))).scalar_one_or_none()
    if session is None or session.revoked_at is not None or session.expires_at <= datetime.now(UTC) \
            or session.mfa_pending:
        return None
    return session


async def _team_principal(db: AsyncSession, session: Session, ip: str) -> tuple[Principal | None, str | None]:
    """The API's Principal for the session's team, with the same scoping; None when the user is in no team."""
    if session.team_id is None:
        return None, None
    await scope_to_team(db, session.team_id)
    role = (await db.execute(select(Membership.role).where(
        Membership.team_id == session.team_id, Membership.user_id == session.user_id))).scalar_one_or_none()
    if role is None:
        return None, None
    name = (await db.execute(select(Team.name).where(Team.id == session.team_id))).scalar_one()
    return Principal(team_id=session.team_id, ip=ip, user_id=session.user_id, role=role,
                     session_id=session.id), name


async def provide_console_user(request: Request[Any, Any, Any], db_session: DbSession) -> ConsoleUser:
    """The signed-in user (CSRF-checked on writes) with the transaction scoped to them and their team, under the
    per-user rate limit the API's session routes use; `NotSignedIn` without a live session."""
    session = await live_session(request, db_session)
    if session is None:
        raise NotSignedIn(request.url.path if request.method in _SAFE_METHODS else None)
    await check_csrf(request, session.csrf_token)
    user = (await db_session.execute(select(User).where(User.id == session.user_id))).scalar_one()
    await scope_to_user(db_session, user.id)
    await count_user_request(request, user.id)
    ip = client_ip(request)
    principal, team_name = await _team_principal(db_session, session, ip)
    return ConsoleUser(user_id=user.id, email=user.email, is_operator=user.is_operator,
                       totp_enabled=user.totp_enabled, session_id=session.id, csrf_token=session.csrf_token, ip=ip,
                       principal=principal, team_name=team_name)


CurrentUser: TypeAlias = NamedDependency[ConsoleUser]
"""The signed-in user, provided as `console_user` on every console route."""
TeamPrincipal: TypeAlias = NamedDependency[Principal]
"""The API's Principal of the signed-in user's team, provided as `principal` on every console route."""


async def provide_console_principal(console_user: CurrentUser) -> Principal:
    """The team Principal of the signed-in user, for team pages (403 when the user is in no team)."""
    if console_user.principal is None:
        raise ApiError(403, "no_team", "This account belongs to no team")
    return console_user.principal
