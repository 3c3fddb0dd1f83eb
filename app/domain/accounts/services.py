"""Accounts: users, their sessions, TOTP and backup codes, and login throttling."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import anyio
import pyotp
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db.models import BackupCode, Membership, Session, Team, User
from app.db.tenancy import scope_to_team, scope_to_user
from app.lib.crypto import Keyring
from app.lib.errors import ApiError
from app.lib.hashing import DUMMY_PASSWORD_HASH, hash_password, random_token, sha256, verify_password
from app.lib.ratelimit import Decision, SlidingWindowLimiter

__all__ = [
    "authenticate",
    "change_password",
    "check_second_factor",
    "create_session",
    "enable_totp",
    "login_throttle",
    "normalise_email",
    "record_login_failure",
    "register",
    "revoke_sessions",
    "start_totp",
]

_UNLIMITED = 10**9


def normalise_email(email: str) -> str:
    """Syntax-checked, normalised email address, or a 422."""
    try:
        # test_environment admits the reserved `.test` names the testbed's hosts use.
        return validate_email(email, check_deliverability=False, test_environment=True).normalized.lower()
    except EmailNotValidError:
        raise ApiError(422, "validation_error", "email is not a valid address") from None


def _throttle_keys(email: str, ip: str) -> list[str]:
    return [f"login:acct:{sha256(email).hex()}", f"login:ip:{ip}"]


async def login_throttle(limiter: SlidingWindowLimiter, settings: Settings, email: str, ip: str) -> None:
    """Refuse (429) while the account or the address has too many recent failures."""
    decision = await limiter.hit(
        _throttle_keys(email, ip), [settings.login_max_failures_account, settings.login_max_failures_ip],
        settings.login_failure_window, add=False,
    )
    if not decision.allowed:
        raise ApiError(429, "rate_limit_exceeded", "Too many failed logins; try again later",
                       headers={"retry-after": str(max(decision.reset, 1))})


async def record_login_failure(limiter: SlidingWindowLimiter, settings: Settings, email: str, ip: str) -> Decision:
    """Count one failed attempt against the account and the address."""
    return await limiter.hit(_throttle_keys(email, ip), [_UNLIMITED, _UNLIMITED], settings.login_failure_window)


async def register(db: AsyncSession, email: str, password: str, team_name: str) -> tuple[User, Team]:
    """Create a user, a team and the user's owner membership."""
    if (await db.execute(select(User.id).where(User.email == email))).first() is not None:
        raise ApiError(409, "conflict", "An account with this email already exists")
    user = User(id=uuid.uuid4(), email=email, password_hash=await anyio.to_thread.run_sync(hash_password, password),
                totp_enabled=False)
    team = Team(id=uuid.uuid4(), name=team_name)
    await scope_to_team(db, team.id)
    await scope_to_user(db, user.id)
    db.add_all([user, team])
    await db.flush()
    db.add(Membership(id=uuid.uuid4(), team_id=team.id, user_id=user.id, role="owner"))
    await db.flush()
    return user, team


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


async def check_second_factor(db: AsyncSession, user: User, code: str, keyring: Keyring) -> bool:
    """Accept a current TOTP code, or consume an unused backup code."""
    totp = _totp(user, keyring)
    cleaned = code.replace(" ", "").replace("-", "").lower()
    if totp is not None and cleaned.isdigit() and totp.verify(cleaned, valid_window=1):
        return True
    backup = (await db.execute(select(BackupCode).where(
        BackupCode.user_id == user.id, BackupCode.code_hash == sha256(cleaned), BackupCode.used_at.is_(None)
    ))).scalar_one_or_none()
    if backup is None:
        return False
    backup.used_at = datetime.now(UTC)
    await db.flush()
    return True


def start_totp(user: User, keyring: Keyring) -> tuple[str, str]:
    """Store a new (not yet enabled) TOTP secret, encrypted; returns it and its otpauth URI."""
    secret = pyotp.random_base32()
    user.totp_key_id, user.totp_secret_ciphertext = keyring.encrypt(
        secret.encode(), f"postyard-totp:{user.id}".encode())
    user.totp_enabled = False
    return secret, pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name="Postyard")


async def enable_totp(db: AsyncSession, user: User, code: str, keyring: Keyring) -> list[str]:
    """Turn 2FA on after a correct code; returns ten fresh backup codes (stored as SHA-256)."""
    totp = _totp(user, keyring)
    if totp is None or not code.isdigit() or not totp.verify(code, valid_window=1):
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
