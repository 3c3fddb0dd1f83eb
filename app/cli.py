"""`postyard-api`: admin commands (migrate, teams, operators, data keys, purges) and the mail-host processes."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings, get_settings
from app.db import migrate
from app.db.engines import create_engine
from app.db.models import ApiKey, DkimKey, Domain, Team, User
from app.db.tenancy import scope_to_team
from app.domain.accounts.session_retention import purge_dead_sessions
from app.domain.audit.retention import purge_old_entries
from app.domain.emails.retention import Purged, purge_expired_bodies, purge_old_emails
from app.domain.operators.cli import add_admin_commands, run_admin
from app.domain.smtp.services import create_credential
from app.lib.api_keys import generate_api_key
from app.lib.audit import record
from app.lib.crypto import Keyring, dkim_associated_data
from app.lib.hashing import sha256
from app.mailhost.cli import COMMANDS as MAILHOST_COMMANDS
from app.mailhost.cli import add_mailhost_commands, run_mailhost

__all__ = [
    "create_smtp_credential", "create_team", "main", "purge_audit_logs", "purge_email_bodies", "purge_email_metadata",
    "purge_sessions", "rotate_data_key",
]


async def create_team(settings: Settings, name: str, mode: str = "live") -> tuple[uuid.UUID, str]:
    """Create a team and its first full-access API key; returns (team id, key)."""
    engine = create_engine(settings.command_database_url, settings, "postyard-cli")
    token = generate_api_key(mode)
    team_id = uuid.uuid4()
    try:
        async with AsyncSession(engine) as db, db.begin():
            await scope_to_team(db, team_id)
            db.add(Team(id=team_id, name=name, approved_at=datetime.now(UTC)))
            await db.flush()
            key = ApiKey(id=uuid.uuid4(), team_id=team_id, name="first key", mode=mode, token_hash=sha256(token),
                         permission="full_access")
            db.add(key)
            await db.flush()
            await record(db, team_id=team_id, actor=("cli", None), action="api_key.created", resource_type="api_key",
                         resource_id=key.id, details={"name": key.name, "permission": "full_access"})
    finally:
        await engine.dispose()
    return team_id, token


async def create_smtp_credential(settings: Settings, team_id: uuid.UUID) -> tuple[str, str]:
    """An SMTP credential of the team for all its domains; returns (username, password)."""
    engine = create_engine(settings.command_database_url, settings, "postyard-cli")
    try:
        async with AsyncSession(engine) as db, db.begin():
            await scope_to_team(db, team_id)
            credential, password = await create_credential(db, team_id, "first credential", None)
            username = credential.username
            await record(db, team_id=team_id, actor=("cli", None), action="smtp_credential.created",
                         resource_type="smtp_credential", resource_id=credential.id, details={"name": credential.name})
    finally:
        await engine.dispose()
    return username, password


async def rotate_data_key(settings: Settings) -> int:
    """Re-encrypt every stored secret under the active data key (as the owner role, across teams)."""
    keyring = Keyring(settings.data_keys, settings.active_data_key_id)
    engine = create_engine(settings.owner_database_url, settings, "postyard-cli")
    changed = 0
    try:
        async with AsyncSession(engine) as db, db.begin():
            rows = (await db.execute(select(DkimKey, Domain.name).join(Domain, Domain.id == DkimKey.domain_id)
                                     .where(DkimKey.key_id != keyring.active_id))).all()
            for key, domain_name in rows:
                ad = dkim_associated_data(domain_name, key.selector)
                plain = keyring.decrypt(key.key_id, key.private_key_ciphertext, ad)
                key.key_id, key.private_key_ciphertext = keyring.encrypt(plain, ad)
                changed += 1
            users = (await db.execute(select(User).where(
                User.totp_key_id.is_not(None), User.totp_key_id != keyring.active_id))).scalars()
            for user in users:
                ad = f"postyard-totp:{user.id}".encode()
                assert user.totp_key_id is not None and user.totp_secret_ciphertext is not None
                plain = keyring.decrypt(user.totp_key_id, user.totp_secret_ciphertext, ad)
                user.totp_key_id, user.totp_secret_ciphertext = keyring.encrypt(plain, ad)
                changed += 1
    finally:
        await engine.dispose()
    return changed


async def purge_audit_logs(settings: Settings, days: int | None = None) -> int:
    """Delete audit entries older than `days` (default POSTYARD_AUDIT_RETENTION_DAYS; the worker does it hourly)."""
    engine = create_engine(settings.command_database_url, settings, "postyard-cli", statements=False)
    try:
        return await purge_old_entries(engine, settings.audit_retention_days if days is None else days)
    finally:
        await engine.dispose()


async def purge_sessions(settings: Settings) -> int:
    """Delete expired and revoked sessions (the worker does it hourly)."""
    engine = create_engine(settings.command_database_url, settings, "postyard-cli", statements=False)
    try:
        return await purge_dead_sessions(engine)
    finally:
        await engine.dispose()


async def purge_email_bodies(settings: Settings) -> int:
    """Drop the bodies of settled emails past their team's retention period (the worker does it hourly)."""
    engine = create_engine(settings.system_database_url, settings, "postyard-cli", statements=False)
    try:
        return await purge_expired_bodies(engine)
    finally:
        await engine.dispose()


async def purge_email_metadata(settings: Settings, days: int | None = None) -> Purged:
    """Delete settled emails, their events and settled webhook deliveries older than `days` (default
    POSTYARD_EMAIL_RETENTION_DAYS, 0: none; the worker does it hourly)."""
    engine = create_engine(settings.system_database_url, settings, "postyard-cli", statements=False)
    try:
        return await purge_old_emails(engine, settings.email_retention_days if days is None else days)
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `postyard-api`."""
    parser = argparse.ArgumentParser(prog="postyard-api", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the database migrations (as the database owner)")
    team = sub.add_parser("create-team", help="create a team and print its first full-access API key")
    team.add_argument("name")
    team.add_argument("--test", action="store_true", help="make an sk_test_ key")
    team.add_argument("--smtp-credential", action="store_true", help="also make an SMTP credential and print it")
    sub.add_parser("rotate-data-key", help="re-encrypt stored secrets under POSTYARD_ACTIVE_DATA_KEY_ID")
    purge = sub.add_parser("purge-audit-logs", help="delete audit entries past POSTYARD_AUDIT_RETENTION_DAYS")
    purge.add_argument("--days", type=int, default=None, help="another period, in days (at least 1)")
    sub.add_parser("purge-sessions", help="delete expired and revoked sessions")
    sub.add_parser("purge-emails", help="drop message bodies past each team's retention period")
    metadata = sub.add_parser("purge-email-metadata",
                              help="delete settled emails, their events and webhook deliveries past "
                                   "POSTYARD_EMAIL_RETENTION_DAYS (0: kept)")
    metadata.add_argument("--days", type=int, default=None, help="another period, in days (at least 1)")
    add_mailhost_commands(sub)
    add_admin_commands(sub)
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.command == "admin":
        return run_admin(args, settings)
    if args.command in MAILHOST_COMMANDS:
        return run_mailhost(args, settings)
    if args.command == "migrate":
        migrate.upgrade(settings.owner_database_url)
        print("migrated")
    elif args.command == "create-team":
        team_id, token = asyncio.run(create_team(settings, args.name, "test" if args.test else "live"))
        print(f"team {team_id}\napi key (shown once): {token}")
        if args.smtp_credential:
            username, password = asyncio.run(create_smtp_credential(settings, team_id))
            print(f"smtp username: {username}\nsmtp password (shown once): {password}")
    elif args.command == "rotate-data-key":
        print(f"re-encrypted {asyncio.run(rotate_data_key(settings))} secrets")
    elif args.command == "purge-emails":
        print(f"purged the bodies of {asyncio.run(purge_email_bodies(settings))} emails")
    elif args.command == "purge-email-metadata":
        if args.days is not None and args.days < 1:
            parser.error("--days must be at least 1")
        purged = asyncio.run(purge_email_metadata(settings, args.days))
        print(f"purged {purged.emails} emails with their events and {purged.webhook_deliveries} webhook deliveries")
    elif args.command == "purge-sessions":
        print(f"purged {asyncio.run(purge_sessions(settings))} sessions")
    else:
        print(f"purged {asyncio.run(purge_audit_logs(settings, args.days))} audit entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
