"""Accounts: users, their sessions, TOTP and backup codes, and the throttling of password and code checks."""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta

import anyio
import pyotp
from email_validator import EmailNotValidError, validate_email
from pyotp.utils import strings_equal
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db.models import BackupCode, Membership, Session, User
from app.db.tenancy import scope_to_user
from app.lib.anonymous_limits import subject_of
from app.lib.api_error import ApiError
from app.lib.crypto import Keyring
from app.lib.hashing import DUMMY_PASSWORD_HASH, hash_password, random_token, sha256, verify_password
from app.lib.ratelimit import Reservation, SlidingWindowLimiter

__all__ = [
    "authenticate",
    "change_password",
    "check_second_factor",
    "create_session",
    "enable_totp",
    "normalise_email",
    "release_attempt",
    "reserve_attempt",
    "revoke_sessions",
    "start_totp",
]

def normalise_email(email: str) -> str:
    """Syntax-checked, normalised email address, or a 422."""
    try:
        # test_environment admits the reserved `.test` names the testbed's hosts use.
        return validate_email(email, check_deliverability=False, test_environment=True).normalized.lower()
    except EmailNotValidError:
        raise ApiError(422, "validation_error", "email is not a valid address") from None


async def reserve_attempt(limiter: SlidingWindowLimiter, settings: Settings, email: str, ip: str) -> Reservation:
    """Take a slot in the account's and the address's failure windows before a password or code is checked.

    429 with Retry-After when either window is full. Taking the slot and checking the window are one atomic
    step, so concurrent guesses are counted before any is checked: at most the limit of them is ever checked.
    A failed check keeps its slot (that is the failure counted); a successful one gives it back through
    `release_attempt`, so an account's owner is never throttled by their own successful logins.
    """
    reservation = await limiter.reserve(
        [f"login:acct:{sha256(email).hex()}", f"login:ip:{subject_of(ip)}"],
        [settings.login_max_failures_account, settings.login_max_failures_ip], settings.login_failure_window,
    )
    if not reservation.decision.allowed:
        raise ApiError(429, "rate_limit_exceeded", "Too many failed attempts; try again later",
                       headers={"retry-after": str(max(reservation.decision.reset, 1))})
    return reservation


async def release_attempt(limiter: SlidingWindowLimiter, reservation: Reservation) -> None:
    """Give back the slot of an attempt that succeeded."""
    await limiter.release(reservation)


async def authenticate(db: AsyncSession, email: str, password: str) -> User | None:
    """The user if the password matches (hashing even for unknown users, to hide which exist)."""
    user = (await db.execute(select(User).where(User.email == email))).scalar_one_or_none()
    digest = user.password_hash if user else DUMMY_PASSWORD_HASH
    ok = await anyio.to_thread.run_sync(verify_password, digest, password)
    return user if user is not None and ok else None


async def default_membership(db: AsyncSession, user_id: uuid.UUID) -> Membership | None:
    """The user's oldest membership (the team a new session opens on)."""
    await scope_to_user(db, user_id)
    query = select(Membership).where(Membership.user_id == user_id).order_by(Membership.created_at).limit(1)
    return (await db.execute(query)).scalar_one_or_none()


async def create_session(
    db: AsyncSession, user: User, team_id: uuid.UUID | None, ttl: int, mfa_pending: bool
) -> tuple[Session, str]:
    """A new session; returns it and the cookie token (only its hash is stored)."""
    token = random_token(32)
    session = Session(
        id=uuid.uuid4(), token_hash=sha256(token), user_id=user.id, team_id=team_id, csrf_token=random_token(24),
        mfa_pending=mfa_pending, expires_at=datetime.now(UTC) + timedelta(seconds=ttl),
    )
    db.add(session)
    await db.flush()
    return session, token


async def pending_session(db: AsyncSession, token: str) -> Session | None:
    """A live session still waiting for its second factor."""
    session = (await db.execute(select(Session).where(Session.token_hash == sha256(token)))).scalar_one_or_none()
    if session is None or not session.mfa_pending or session.revoked_at is not None:
        return None
    return session if session.expires_at > datetime.now(UTC) else None


async def revoke_sessions(db: AsyncSession, user_id: uuid.UUID, only: uuid.UUID | None = None) -> None:
    """Revoke the user's sessions (or just one)."""
    query = update(Session).where(Session.user_id == user_id, Session.revoked_at.is_(None))
    if only is not None:
        query = query.where(Session.id == only)
    await db.execute(query.values(revoked_at=datetime.now(UTC)))


def _totp(user: User, keyring: Keyring) -> pyotp.TOTP | None:
    if user.totp_secret_ciphertext is None or user.totp_key_id is None:
        return None
    secret = keyring.decrypt(user.totp_key_id, user.totp_secret_ciphertext, f"postyard-totp:{user.id}".encode())
    return pyotp.TOTP(secret.decode())


def _matching_step(totp: pyotp.TOTP, code: str) -> int | None:
    """The time step (the current one or a neighbour, for clock skew) whose code is `code`."""
    current = totp.timecode(time.time())
    matches = [step for step in (current - 1, current, current + 1) if strings_equal(totp.generate_otp(step), code)]
    return max(matches, default=None)


async def _use_totp(db: AsyncSession, user: User, code: str, keyring: Keyring) -> bool:
    """Accept a TOTP code once: its time step must be later than the last one this user used."""
    totp = _totp(user, keyring)
    step = _matching_step(totp, code) if totp is not None and code.isdigit() else None
    if step is None:
        return False
    # Row-locked compare-and-set: of two concurrent requests with the same code, the second sees the new step.
    claimed = await db.execute(
        update(User)
        .where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step)
        .returning(User.id)
    )
    return claimed.first() is not None


async def _use_backup_code(db: AsyncSession, user: User, code: str) -> bool:
    """Consume an unused backup code; of concurrent requests with the same code, exactly one gets it."""
    claimed = await db.execute(
        update(BackupCode)
        .where(BackupCode.user_id == user.id, BackupCode.code_hash == sha256(code), BackupCode.used_at.is_(None))
        .values(used_at=datetime.now(UTC))
        .returning(BackupCode.id)
    )
    return claimed.first() is not None


async def check_second_factor(db: AsyncSession, user: User, code: str, keyring: Keyring) -> bool:
    """Accept a TOTP code of a time step not used before, or consume an unused backup code."""
    cleaned = code.replace(" ", "").replace("-", "").lower()
    return await _use_totp(db, user, cleaned, keyring) or await _use_backup_code(db, user, cleaned)


def start_totp(user: User, keyring: Keyring) -> tuple[str, str]:
    """Store a new (not yet enabled) TOTP secret, encrypted; returns it and its otpauth URI."""
    secret = pyotp.random_base32()
    user.totp_key_id, user.totp_secret_ciphertext = keyring.encrypt(
        secret.encode(), f"postyard-totp:{user.id}".encode())
    user.totp_enabled = False
    return secret, pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name="Postyard")


async def enable_totp(db: AsyncSession, user: User, code: str, keyring: Keyring) -> list[str]:
    """Turn 2FA on after a correct code; returns ten fresh backup codes (stored as SHA-256)."""
    if not await _use_totp(db, user, code.replace(" ", ""), keyring):
        raise ApiError(422, "invalid_code", "The code does not match; start the setup again if needed")
    user.totp_enabled = True
    await db.execute(BackupCode.__table__.delete().where(BackupCode.user_id == user.id))
    codes = [secrets.token_hex(5) for _ in range(10)]
    db.add_all([BackupCode(id=uuid.uuid4(), user_id=user.id, code_hash=sha256(c)) for c in codes])
    await db.flush()
    return codes


async def change_password(db: AsyncSession, user: User, current: str, new: str) -> None:
    """Replace the password and revoke every session of the user."""
    if not await anyio.to_thread.run_sync(verify_password, user.password_hash, current):
        raise ApiError(403, "invalid_credentials", "The current password is wrong")
    user.password_hash = await anyio.to_thread.run_sync(hash_password, new)
    await revoke_sessions(db, user.id)
    await db.flush()
