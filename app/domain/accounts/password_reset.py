"""Password reset by email: a single-use link (30 minutes) sent from the system sender, then a new password
that signs every session of the user out."""

from __future__ import annotations

from urllib.parse import urlsplit

import anyio
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import User
from app.domain.accounts import services
from app.domain.accounts.own_account import record_account_change
from app.domain.emails.system_mail import send_system_mail, system_sender
from app.lib.anonymous_limits import subject_of
from app.lib.api_error import ApiError
from app.lib.hashing import hash_password, random_token, sha256
from app.lib.state import Services

__all__ = ["RESET_PATH", "RESET_TTL_SECONDS", "enabled", "refusal", "request_reset", "reset_password"]

RESET_PATH = "/console/password-reset/confirm"
RESET_TTL_SECONDS = 1800
_REFUSALS = {
    "unknown": "This reset link is not valid; ask for a new one",
    "used": "This reset link was already used; ask for a new one",
    "expired": "This reset link has expired; ask for a new one",
}
_BODY = """Someone (you, we hope) asked to reset the password of the Postyard account {email}.

To choose a new password, open this link within 30 minutes:

{link}

The link works once. If you did not ask for this, ignore this email: your password stays as it is.
"""


def enabled(svc: Services) -> bool:
    """Whether the instance sends reset links (`POSTYARD_SYSTEM_SENDER` set to an address)."""
    return system_sender(svc.settings) is not None


async def _throttle(svc: Services, email: str, ip: str) -> None:
    """Count a request against the address's and the caller's windows of failed logins (their limits); 429
    beyond either. Every address counts, known or not, so the answer tells nothing of which exist."""
    settings = svc.settings
    decision = await svc.credential_limiter.hit(
        [f"reset:acct:{sha256(email).hex()}", f"reset:ip:{subject_of(ip)}"],
        [settings.login_max_failures_account, settings.login_max_failures_ip], settings.login_failure_window)
    if not decision.allowed:
        raise ApiError(429, "rate_limit_exceeded", "Too many reset requests; try again later",
                       headers={"retry-after": str(max(decision.reset, 1))})


async def request_reset(db: AsyncSession, svc: Services, email: str, host: str, ip: str) -> None:
    """Email a reset link on `host` (the console's host and port, as the request named it) to the account of
    `email`, if there is one; nothing tells the caller whether there is."""
    if not enabled(svc):
        raise ApiError(404, "password_reset_off", "Password reset by email is off on this instance")
    allowed = svc.settings.console_host_names
    if allowed and (urlsplit(f"//{host}").hostname or "") not in allowed:
        raise ApiError(400, "unknown_host", "The console is not served under this host name")
    email = services.normalise_email(email)
    await _throttle(svc, email, ip)
    user = (await db.execute(select(User).where(User.email == email))).scalar_one_or_none()
    if user is None:
        return
    token = random_token(32)
    await db.execute(text("SELECT postyard_password_reset_issue(:u, :h, :ip, :s)"),
                     {"u": user.id, "h": sha256(token), "ip": ip, "s": RESET_TTL_SECONDS})
    link = f"https://{host}{RESET_PATH}?token={token}"
    sent = await send_system_mail(db, svc.settings, "password-reset", user.email, "Reset your Postyard password",
                                  _BODY.format(email=user.email, link=link), ip)
    if sent is not None:
        membership = await services.default_membership(db, user.id)
        await record_account_change(db, user.id, membership.team_id if membership else None,
                                    "user.password_reset_requested", ip)


async def refusal(db: AsyncSession, token: str) -> ApiError | None:
    """Why the link's token cannot set a password (unknown, used, expired), or None when it can."""
    reason = (await db.execute(text("SELECT postyard_password_reset_refusal(:h)"),
                               {"h": sha256(token)})).scalar_one()
    return ApiError(410, "invalid_reset_link", _REFUSALS[reason]) if reason else None


async def reset_password(db: AsyncSession, token: str, new_password: str, ip: str) -> User:
    """Consume the token (once: of concurrent uses one succeeds), set the new password, revoke every session of
    the user and record it in the log of the user's team. 410 `invalid_reset_link` for a bad token."""
    user_id = (await db.execute(text("SELECT postyard_password_reset_claim(:h)"),
                                {"h": sha256(token)})).scalar_one()
    if user_id is None:
        raise await refusal(db, token) or ApiError(410, "invalid_reset_link", _REFUSALS["used"])
    user = (await db.execute(select(User).where(User.id == user_id))).scalar_one()
    user.password_hash = await anyio.to_thread.run_sync(hash_password, new_password)
    await services.revoke_sessions(db, user.id)
    await db.flush()
    membership = await services.default_membership(db, user.id)
    await record_account_change(db, user.id, membership.team_id if membership else None, "user.password_reset",
                                ip)
    return user
