"""SQLAlchemy models; the tables themselves are created by the alembic migrations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from advanced_alchemy.base import UUIDAuditBase, UUIDBase
from sqlalchemy import ARRAY, BigInteger, Boolean, DateTime, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

__all__ = [
    "ApiKey",
    "AuditLog",
    "BackupCode",
    "DkimKey",
    "Domain",
    "Invite",
    "Membership",
    "Session",
    "SmtpCredential",
    "Team",
    "User",
]


class Team(UUIDAuditBase):
    """A tenant: owns domains, keys, credentials and audit entries."""

    __tablename__ = "teams"
    name: Mapped[str] = mapped_column(String(200))
    rate_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    api_key_rate_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    retention_days: Mapped[int] = mapped_column(Integer, default=30)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    suspension_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    daily_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)
    monthly_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)


class User(UUIDAuditBase):
    """A person who logs in with a password (and optionally TOTP)."""

    __tablename__ = "users"
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    totp_key_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    totp_secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    is_operator: Mapped[bool] = mapped_column(Boolean, default=False)


class BackupCode(UUIDBase):
    """A one-time 2FA backup code, stored as SHA-256."""

    __tablename__ = "backup_codes"
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[bytes] = mapped_column(LargeBinary)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Membership(UUIDAuditBase):
    """A user's role in a team: owner, admin or member."""

    __tablename__ = "memberships"
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))


class Invite(UUIDAuditBase):
    """A one-time, expiring invite: to join a team (team_id) or to start a new one (team_id NULL)."""

    __tablename__ = "invites"
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    role: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    used_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Session(UUIDAuditBase):
    """A login session: cookie token and CSRF token, 24 h, revocable."""

    __tablename__ = "sessions"
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), nullable=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    mfa_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ApiKey(UUIDAuditBase):
    """A Resend-style API key, stored as SHA-256 of its token."""

    __tablename__ = "api_keys"
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(4))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    permission: Mapped[str] = mapped_column(String(16))
    domain_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), nullable=True)
    allowed_ips: Mapped[list[str] | None] = mapped_column(ARRAY(Text), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Domain(UUIDAuditBase):
    """A team's entry for a sending domain name; several teams may have one, at most one is verified."""

    __tablename__ = "domains"
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(253))
    status: Mapped[str] = mapped_column(String(24), default="not_started")
    verification_token: Mapped[str] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(32))
    tls_mode: Mapped[str] = mapped_column(String(16))
    return_path: Mapped[str] = mapped_column(String(63))
    record_status: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    tls_mode_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    receiving: Mapped[bool] = mapped_column(Boolean, default=False)  # port 25 takes its mail once verified
    open_tracking: Mapped[bool] = mapped_column(Boolean, default=False)
    click_tracking: Mapped[bool] = mapped_column(Boolean, default=False)


class DkimKey(UUIDAuditBase):
    """A DKIM key pair; the private key is AES-256-GCM encrypted under a data key."""

    __tablename__ = "dkim_keys"
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    domain_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"))
    selector: Mapped[str] = mapped_column(String(63))
    algorithm: Mapped[str] = mapped_column(String(16))
    public_key: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(64))
    private_key_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending")


class SmtpCredential(UUIDAuditBase):
    """An SMTP submission login, bcrypt `$2y$` hashed for Dovecot."""

    __tablename__ = "smtp_credentials"
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    domain_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuditLog(UUIDBase):
    """An append-only record of who did what to which resource, from where."""

    __tablename__ = "audit_logs"
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
