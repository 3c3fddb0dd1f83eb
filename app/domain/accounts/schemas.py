"""Request and response bodies of /auth."""

from __future__ import annotations

from typing import Annotated

import msgspec

from app.lib.request_body import RequestBody

__all__ = ["BackupCodes", "Login", "PasswordChange", "PasswordReset", "PasswordResetAccepted", "PasswordResetRequest",
           "Register", "SessionInfo", "TotpCode", "TotpDisable", "TotpSetup"]

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=320, extra_json_schema={"format": "email"})]
Password = Annotated[str, msgspec.Meta(min_length=12, max_length=256)]
AnyPassword = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Code = Annotated[str, msgspec.Meta(min_length=6, max_length=32)]


class Register(RequestBody):
    """Sign-up: an account (or, with its password, an existing one), and an invite to join a team or to start
    one (`team_name` names it). On an open instance, no invite: the new team waits for an operator's approval."""

    email: Email
    password: Password
    team_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    invite: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None


class Login(RequestBody):
    """Email and password."""

    email: Email
    password: AnyPassword


class TotpCode(RequestBody):
    """A TOTP code or a one-time backup code."""

    code: Code


class TotpDisable(RequestBody):
    """Turning 2FA off needs the password."""

    password: AnyPassword


class PasswordChange(RequestBody):
    """The current password and the new one."""

    current_password: AnyPassword
    new_password: Password


class PasswordResetRequest(RequestBody):
    """The address of the account whose password is forgotten."""

    email: Email


class PasswordResetAccepted(msgspec.Struct):
    """The answer to a reset request, the same whether or not the address has an account."""

    message: str = "If an account exists for that address, we sent it a link"
    object: str = "password_reset"


class PasswordReset(RequestBody):
    """A reset link's token and the new password (the rules of a password change)."""

    token: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    new_password: Password


class SessionInfo(msgspec.Struct):
    """The logged-in user, their team and the CSRF token for state-changing requests."""

    user_id: str
    email: str
    mfa_required: bool
    team_id: str | None = None
    role: str | None = None
    csrf_token: str | None = None
    totp_enabled: bool = False


class TotpSetup(msgspec.Struct):
    """The secret to load into an authenticator app."""

    secret: str
    otpauth_uri: str


class BackupCodes(msgspec.Struct):
    """One-time backup codes, shown once."""

    backup_codes: list[str]
