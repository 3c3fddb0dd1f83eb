"""Signing in and out of the console, the account page (password, two-factor setup) and accepting an invite."""

from __future__ import annotations

import base64
import dataclasses
from typing import Annotated, Any
from urllib.parse import quote

import qrcode
import qrcode.image.svg
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import FromQuery, QueryParameter
from sqlalchemy import select

from app.console.auth import (
    ConsoleUser,
    CurrentUser,
    check_csrf,
    check_origin,
    live_session,
    login_url,
    session_cookie,
)
from app.console.forms import form_data, parse_form, safe_next
from app.console.render import redirect, render, render_error
from app.db.models import User
from app.domain.accounts import own_account, registration, services
from app.domain.accounts.login import password_login, second_factor_login
from app.domain.accounts.schemas import Login, PasswordChange, Register, TotpCode
from app.domain.teams import acceptance
from app.domain.teams.schemas import InviteAccept
from app.lib.anonymous_limits import limit_per_ip
from app.lib.api_error import ApiError
from app.lib.auth import SESSION_COOKIE, client_ip
from app.lib.auth import services as app_services
from app.lib.dependencies import DbSession

__all__ = ["SIGN_IN_HANDLERS"]

NextPath = Annotated[str | None, QueryParameter(name="next", required=False)]
_NOTICES = {"signed-out": "You are signed out.", "password-changed": "Your password is changed; sign in again.",
            "password-reset": "Your new password is set and every session is signed out; sign in with it."}


def _qr_data_uri(uri: str) -> str:
    """The otpauth URI as a QR code, an SVG made here, as a data: URI (the CSP allows data: images only)."""
    svg = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, border=2).to_string()
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()


def _totp_url(next_path: str) -> str:
    return f"/console/login/totp?next={quote(next_path, safe='/')}"


@get("/login", name="console:login")
async def login_page(request: Request[Any, Any, Any], db_session: DbSession, next_path: NextPath = None,
                     m: FromQuery[str | None] = None) -> Response[Any]:
    """The sign-in form (the console's home when already signed in)."""
    if await live_session(request, db_session) is not None:
        return await redirect(request, None, None, safe_next(next_path))
    return await render(request, None, "login.html.j2", next_path=safe_next(next_path), email="",
                        notice=_NOTICES.get(m or ""))


@post("/login", name="console:login-submit")
async def login(request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
    """Check email and password like `POST /auth/login`; then the second factor when the user has one."""
    data = await form_data(request)
    next_path = safe_next(data.get("next"))
    try:
        check_origin(request)
        await limit_per_ip(request, "login")
        credentials = parse_form(data, Login)
        signed_in = await password_login(db_session, app_services(request), credentials.email,
                                         credentials.password, client_ip(request))
    except ApiError as exc:
        return await render_error(request, None, "login.html.j2", exc, next_path=next_path,
                                  email=data.get("email", ""), notice=None)
    to = _totp_url(next_path) if signed_in.session.mfa_pending else next_path
    return await redirect(request, None, db_session, to, cookies=[session_cookie(request, signed_in.token)])


@get("/login/totp", name="console:totp")
async def totp_page(request: Request[Any, Any, Any], db_session: DbSession,
                    next_path: NextPath = None) -> Response[Any]:
    """The second-factor form of a sign-in waiting for it."""
    pending = await services.pending_session(db_session, request.cookies.get(SESSION_COOKIE, ""))
    if pending is None:
        return await redirect(request, None, None, login_url(next_path))
    return await render(request, None, "totp.html.j2", pending_csrf=pending.csrf_token,
                        next_path=safe_next(next_path))


@post("/login/totp", name="console:totp-submit")
async def totp(request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
    """Complete the sign-in with a TOTP or backup code, like `POST /auth/login/totp`."""
    data = await form_data(request)
    next_path = safe_next(data.get("next"))
    pending = await services.pending_session(db_session, request.cookies.get(SESSION_COOKIE, ""))
    if pending is None:
        return await redirect(request, None, None, login_url(next_path))
    await check_csrf(request, pending.csrf_token)
    try:
        await limit_per_ip(request, "login-totp")
        code = parse_form(data, TotpCode).code
        signed_in = await second_factor_login(db_session, app_services(request), pending, code, client_ip(request))
    except ApiError as exc:
        return await render_error(request, None, "totp.html.j2", exc, pending_csrf=pending.csrf_token,
                                  next_path=next_path)
    return await redirect(request, None, db_session, next_path, cookies=[session_cookie(request, signed_in.token)])


@post("/logout", name="console:logout")
async def logout(request: Request[Any, Any, Any], console_user: CurrentUser, db_session: DbSession) -> Response[Any]:
    """End this session, like `POST /auth/logout`."""
    await services.revoke_sessions(db_session, console_user.user_id, only=console_user.session_id)
    return await redirect(request, None, db_session, "/console/login?m=signed-out",
                          cookies=[Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/")])


async def _account(request: Request[Any, Any, Any], user: ConsoleUser, **context: Any) -> Response[Any]:
    return await render(request, user, "account.html.j2", **context)


@get("/account", name="console:account")
async def account(request: Request[Any, Any, Any], console_user: CurrentUser) -> Response[Any]:
    """The user's own account: password and two-factor authentication."""
    return await _account(request, console_user)


@post("/account/password", name="console:password")
async def change_password(request: Request[Any, Any, Any], console_user: CurrentUser,
                          db_session: DbSession) -> Response[Any]:
    """Change the password with the service `POST /auth/password` uses (it revokes every session of the user);
    this browser carries on in a new session, so only the others are signed out."""
    svc = app_services(request)
    team_id = console_user.principal.team_id if console_user.principal else None
    try:
        change = parse_form(await form_data(request), PasswordChange)
        user = (await db_session.execute(select(User).where(User.id == console_user.user_id))).scalar_one()
        await own_account.change_password(db_session, svc, user, change.current_password, change.new_password,
                                          team_id, console_user.ip)
    except ApiError as exc:
        return await render_error(request, console_user, "account.html.j2", exc)
    session, token = await services.create_session(db_session, user, team_id, svc.settings.session_ttl,
                                                   mfa_pending=False)
    carried_on = dataclasses.replace(console_user, session_id=session.id, csrf_token=session.csrf_token)
    return await redirect(request, carried_on, db_session, "/console/account",
                          flash="Password changed. Your other sessions are signed out.",
                          cookies=[session_cookie(request, token)])


@post("/account/totp", name="console:totp-setup")
async def totp_setup(request: Request[Any, Any, Any], console_user: CurrentUser,
                     db_session: DbSession) -> Response[Any]:
    """Start two-factor setup like `POST /auth/2fa/setup`: a new secret, as a QR code and as text."""
    user = (await db_session.execute(select(User).where(User.id == console_user.user_id))).scalar_one()
    if user.totp_enabled:
        return await render_error(request, console_user, "account.html.j2",
                                  ApiError(409, "conflict", "Two-factor authentication is already on"))
    secret, uri = services.start_totp(user, app_services(request).keyring)
    return await render(request, console_user, "totp_setup.html.j2", secret=secret, qr=_qr_data_uri(uri))


@post("/account/totp/enable", name="console:totp-enable")
async def totp_enable(request: Request[Any, Any, Any], console_user: CurrentUser,
                      db_session: DbSession) -> Response[Any]:
    """Confirm a code and turn two-factor authentication on like `POST /auth/2fa/enable`; shows the backup
    codes once."""
    svc = app_services(request)
    user = (await db_session.execute(select(User).where(User.id == console_user.user_id))).scalar_one()
    try:
        if user.totp_enabled:
            raise ApiError(409, "conflict", "Two-factor authentication is already on")
        code = parse_form(await form_data(request), TotpCode).code
        codes = await own_account.enable_totp(db_session, svc, user, code,
                                              console_user.principal.team_id if console_user.principal else None,
                                              console_user.ip)
    except ApiError as exc:
        return await render_error(request, console_user, "account.html.j2", exc)
    enabled = dataclasses.replace(console_user, totp_enabled=True)
    return await render(request, enabled, "backup_codes.html.j2", codes=codes)


@get("/invites/accept", name="console:invite")
async def invite_page(request: Request[Any, Any, Any], db_session: DbSession,
                      token: Annotated[str, QueryParameter(min_length=1, max_length=100)]) -> Response[Any]:
    """An invite: join with the signed-in account, or sign up (or in with an existing account's password)."""
    session = await live_session(request, db_session)
    return await render(request, None, "invite.html.j2", token=token, signed_in=session is not None,
                        invite_csrf=session.csrf_token if session else "",
                        back=f"/console/invites/accept?token={quote(token)}", email="")


@post("/invites/accept", name="console:invite-accept")
async def accept_invite(request: Request[Any, Any, Any], console_user: CurrentUser,
                        db_session: DbSession) -> Response[Any]:
    """Accept the invite as the signed-in user, like `POST /invites/accept`; the session moves to its team."""
    data = await form_data(request)
    token = data.get("token", "")
    try:
        await limit_per_ip(request, "invite-accept")
        form = parse_form(data, InviteAccept)
        await acceptance.accept_invite(db_session, form.token, form.team_name, console_user.user_id,
                                       console_user.email, console_user.session_id, console_user.ip)
    except ApiError as exc:
        return await render_error(request, None, "invite.html.j2", exc, token=token, signed_in=True,
                                  invite_csrf=console_user.csrf_token,
                                  back=f"/console/invites/accept?token={quote(token)}", email="")
    return await redirect(request, console_user, db_session, "/console/", flash="You joined the team.")


@post("/invites/register", name="console:invite-register")
async def register_with_invite(request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
    """Sign up with the invite like `POST /auth/register`, then carry on signed in."""
    data = await form_data(request)
    token = data.get("invite", "")
    svc = app_services(request)
    try:
        check_origin(request)
        await limit_per_ip(request, "register")
        form = parse_form(data, Register)
        if not form.invite:
            raise ApiError(403, "invite_required", "Sign-up on this instance needs an invite")
        email = services.normalise_email(form.email)
        signed_up = await registration.register(db_session, svc, email=email, password=form.password,
                                                team_name=form.team_name, invite=form.invite,
                                                ip=client_ip(request))
    except ApiError as exc:
        return await render_error(request, None, "invite.html.j2", exc, token=token, signed_in=False,
                                  invite_csrf="", back=f"/console/invites/accept?token={quote(token)}",
                                  email=data.get("email", ""))
    mfa = signed_up.user.totp_enabled
    _, session_token = await services.create_session(db_session, signed_up.user, signed_up.team_id,
                                                     svc.settings.session_ttl, mfa_pending=mfa)
    to = _totp_url("/console/") if mfa else "/console/"
    return await redirect(request, None, db_session, to, cookies=[session_cookie(request, session_token)])


SIGN_IN_HANDLERS = [login_page, login, totp_page, totp, logout, account, change_password, totp_setup, totp_enable,
                    invite_page, accept_invite, register_with_invite]
