"""Routes of /auth: register, login (with TOTP), logout, password change and reset by email, 2FA setup."""

from __future__ import annotations

from typing import Any

import anyio
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Membership, Session, User
from app.domain.accounts import own_account, password_reset, registration, services
from app.domain.accounts.current_user import SessionUser, provide_session_user
from app.domain.accounts.login import password_login, second_factor_login
from app.domain.accounts.schemas import (
    BackupCodes,
    Login,
    PasswordChange,
    PasswordReset,
    PasswordResetAccepted,
    PasswordResetRequest,
    Register,
    SessionInfo,
    TotpCode,
    TotpDisable,
    TotpSetup,
)
from app.lib.anonymous_limits import limit_per_ip
from app.lib.api_error import ApiError
from app.lib.auth import SESSION_COOKIE, client_ip
from app.lib.auth import services as app_services
from app.lib.dependencies import DbSession
from app.lib.hashing import verify_password

__all__ = ["AuthController"]


def _cookie(request: Request[Any, Any, Any], token: str, max_age: int) -> Cookie:
    return Cookie(key=SESSION_COOKIE, value=token, max_age=max_age, path="/", httponly=True,
                  secure=app_services(request).settings.cookie_secure, samesite="strict")


async def _user_of(account: SessionUser, db: AsyncSession) -> User:
    return (await db.execute(select(User).where(User.id == account.user_id))).scalar_one()


async def _audit(db: AsyncSession, account: SessionUser, action: str) -> None:
    await own_account.record_account_change(db, account.user_id, account.team_id, action, account.ip)


class AuthController(Controller):
    """Accounts and sessions (cookie `postyard_session`: httpOnly, Secure, SameSite=Strict, 24 h)."""

    path = "/auth"
    tags = ["Accounts"]

    @post("/register", status_code=201, operation_id="auth/register")
    async def register(
        self, request: Request[Any, Any, Any], data: JSONBody[Register], db_session: DbSession
    ) -> Response[SessionInfo]:
        """Sign up with an invite (POSTYARD_SIGNUP=invite, the default), or on an open instance without one, and
        log in. An address that has an account signs up with that account's password only: the account joins."""
        await limit_per_ip(request, "register")
        svc = app_services(request)
        email = services.normalise_email(data.email)
        signed_up = await registration.register(db_session, svc, email=email, password=data.password,
                                                team_name=data.team_name, invite=data.invite, ip=client_ip(request))
        user, mfa = signed_up.user, signed_up.user.totp_enabled
        ttl = svc.settings.session_ttl
        session, token = await services.create_session(db_session, user, signed_up.team_id, ttl, mfa_pending=mfa)
        info = SessionInfo(user_id=str(user.id), email=email, mfa_required=mfa, totp_enabled=mfa,
                           team_id=None if mfa else str(signed_up.team_id), role=None if mfa else signed_up.role,
                           csrf_token=None if mfa else session.csrf_token)
        return Response(info, status_code=201, cookies=[_cookie(request, token, ttl)])

    @post("/login", status_code=200, operation_id="auth/login")
    async def login(
        self, request: Request[Any, Any, Any], data: JSONBody[Login], db_session: DbSession,
    ) -> Response[SessionInfo]:
        """Log in with email and password; with 2FA on, the session waits for `/auth/login/totp`."""
        await limit_per_ip(request, "login")
        signed_in = await password_login(db_session, app_services(request), data.email, data.password,
                                         client_ip(request))
        user, mfa = signed_in.user, signed_in.session.mfa_pending
        info = SessionInfo(
            user_id=str(user.id), email=user.email, mfa_required=mfa, totp_enabled=user.totp_enabled,
            team_id=None if mfa or signed_in.team_id is None else str(signed_in.team_id),
            role=None if mfa else signed_in.role, csrf_token=None if mfa else signed_in.session.csrf_token,
        )
        return Response(info, cookies=[_cookie(request, signed_in.token, app_services(request).settings.session_ttl)])

    @post("/login/totp", status_code=200, operation_id="auth/login-totp")
    async def login_totp(
        self, request: Request[Any, Any, Any], data: JSONBody[TotpCode], db_session: DbSession
    ) -> Response[SessionInfo]:
        """Complete a login with a TOTP code or a backup code."""
        await limit_per_ip(request, "login-totp")
        pending = await services.pending_session(db_session, request.cookies.get(SESSION_COOKIE, ""))
        if pending is None:
            raise ApiError(401, "unauthorized", "No login is waiting for a second factor")
        svc = app_services(request)
        signed_in = await second_factor_login(db_session, svc, pending, data.code, client_ip(request))
        info = SessionInfo(user_id=str(signed_in.user.id), email=signed_in.user.email, mfa_required=False,
                           totp_enabled=True, team_id=str(signed_in.team_id) if signed_in.team_id else None,
                           role=signed_in.role, csrf_token=signed_in.session.csrf_token)
        return Response(info, cookies=[_cookie(request, signed_in.token, svc.settings.session_ttl)])

    @get("/me", operation_id="auth/me", dependencies={"account": Provide(provide_session_user)})
    async def me(self, account: NamedDependency[SessionUser], db_session: DbSession) -> SessionInfo:
        """The logged-in user, their team and role (none for a session without a team) and CSRF token."""
        user = await _user_of(account, db_session)
        csrf = (await db_session.execute(select(Session.csrf_token).where(Session.id == account.session_id))
                ).scalar_one()
        role = (await db_session.execute(select(Membership.role).where(
            Membership.team_id == account.team_id, Membership.user_id == user.id))).scalar_one_or_none()
        return SessionInfo(user_id=str(user.id), email=user.email, mfa_required=False,
                           team_id=str(account.team_id) if role else None, role=role, csrf_token=csrf,
                           totp_enabled=user.totp_enabled)

    @post("/logout", status_code=204, operation_id="auth/logout",
          dependencies={"account": Provide(provide_session_user)})
    async def logout(self, account: NamedDependency[SessionUser], db_session: DbSession) -> Response[None]:
        """End this session."""
        await services.revoke_sessions(db_session, account.user_id, only=account.session_id)
        return Response(None, status_code=204, cookies=[Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/")])

    @post("/password", status_code=204, operation_id="auth/change-password",
          dependencies={"account": Provide(provide_session_user)})
    async def change_password(
        self, request: Request[Any, Any, Any], data: JSONBody[PasswordChange], account: NamedDependency[SessionUser],
        db_session: DbSession,
    ) -> Response[None]:
        """Change the password; every session of the user is revoked (log in again)."""
        svc = app_services(request)
        user = await _user_of(account, db_session)
        await own_account.change_password(db_session, svc, user, data.current_password, data.new_password,
                                          account.team_id, account.ip)
        return Response(None, status_code=204, cookies=[Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/")])

    @post("/password-reset", status_code=202, operation_id="auth/password-reset")
    async def request_password_reset(
        self, request: Request[Any, Any, Any], data: JSONBody[PasswordResetRequest], db_session: DbSession,
    ) -> PasswordResetAccepted:
        """Email a single-use link, valid 30 minutes, to the account of `email` if there is one (from the
        instance's system sender; 404 while that is not set). The answer is the same whether or not there is:
        the link opens the console's form, or its token goes to `/auth/password-reset/confirm`."""
        await limit_per_ip(request, "password-reset")
        await password_reset.request_reset(db_session, app_services(request), data.email, request.url.netloc,
                                           client_ip(request))
        return PasswordResetAccepted()

    @post("/password-reset/confirm", status_code=204, operation_id="auth/password-reset-confirm")
    async def confirm_password_reset(
        self, request: Request[Any, Any, Any], data: JSONBody[PasswordReset], db_session: DbSession,
    ) -> Response[None]:
        """Set a new password with a reset link's token (used up); every session of the user is revoked, and
        none is opened: log in with the new password (and the second factor). 410 for a used, expired or
        unknown token."""
        await limit_per_ip(request, "password-reset-confirm")
        await password_reset.reset_password(db_session, data.token, data.new_password, client_ip(request))
        return Response(None, status_code=204, cookies=[Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/")])

    @post("/2fa/setup", status_code=200, operation_id="auth/2fa-setup",
          dependencies={"account": Provide(provide_session_user)})
    async def totp_setup(
        self, request: Request[Any, Any, Any], account: NamedDependency[SessionUser], db_session: DbSession
    ) -> TotpSetup:
        """Start TOTP setup: a new secret, enabled once a code from it is confirmed."""
        user = await _user_of(account, db_session)
        if user.totp_enabled:
            raise ApiError(409, "conflict", "Two-factor authentication is already on")
        secret, uri = services.start_totp(user, app_services(request).keyring)
        return TotpSetup(secret=secret, otpauth_uri=uri)

    @post("/2fa/enable", status_code=200, operation_id="auth/2fa-enable",
          dependencies={"account": Provide(provide_session_user)})
    async def totp_enable(
        self, request: Request[Any, Any, Any], data: JSONBody[TotpCode], account: NamedDependency[SessionUser],
        db_session: DbSession,
    ) -> BackupCodes:
        """Confirm a code and turn 2FA on; returns one-time backup codes, shown once."""
        svc = app_services(request)
        user = await _user_of(account, db_session)
        if user.totp_enabled:
            raise ApiError(409, "conflict", "Two-factor authentication is already on")
        codes = await own_account.enable_totp(db_session, svc, user, data.code, account.team_id, account.ip)
        return BackupCodes(backup_codes=codes)

    @post("/2fa/disable", status_code=204, operation_id="auth/2fa-disable",
          dependencies={"account": Provide(provide_session_user)})
    async def totp_disable(
        self, request: Request[Any, Any, Any], data: JSONBody[TotpDisable], account: NamedDependency[SessionUser],
        db_session: DbSession,
    ) -> None:
        """Turn 2FA off (needs the password)."""
        svc = app_services(request)
        user = await _user_of(account, db_session)
        attempt = await services.reserve_attempt(svc.credential_limiter, svc.settings, user.email, account.ip)
        if not await anyio.to_thread.run_sync(verify_password, user.password_hash, data.password):
            raise ApiError(403, "invalid_credentials", "The password is wrong")
        await services.release_attempt(svc.credential_limiter, attempt)
        user.totp_enabled, user.totp_secret_ciphertext, user.totp_key_id = False, None, None
        await _audit(db_session, account, "user.2fa_disabled")
