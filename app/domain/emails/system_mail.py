"""The instance's own mail (password resets): sent as the team holding the system sender's verified domain,
through the same outbox as every email, so it is DKIM-signed and shows in that team's activity log."""

from __future__ import annotations

import logging
import uuid
from email.utils import parseaddr

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db.tenancy import scope_to_team
from app.domain.emails import services
from app.domain.emails.validation import Draft, check_address
from app.lib.api_error import ApiError
from app.lib.auth import Principal

__all__ = ["SYSTEM_TAG", "send_system_mail", "system_sender"]

logger = logging.getLogger("postyard.system_mail")
SYSTEM_TAG = "postyard"  # the tag's name on the instance's own mail; its value says which kind


def system_sender(settings: Settings) -> tuple[str, str] | None:
    """The display name (Postyard when it names none) and address of `POSTYARD_SYSTEM_SENDER`; None when it is
    empty or not an address."""
    name, address = parseaddr(settings.system_sender)
    if not address:
        return None
    try:
        return name or "Postyard", check_address(address, "POSTYARD_SYSTEM_SENDER")
    except ApiError:
        logger.error("POSTYARD_SYSTEM_SENDER is not an address: %r", settings.system_sender)
        return None


async def send_system_mail(db: AsyncSession, settings: Settings, kind: str, to: str, subject: str, body: str,
                           ip: str) -> uuid.UUID | None:
    """Queue a plain-text email from the system sender in the caller's transaction, as the team holding its
    domain verified; the transaction is left scoped to that team. None (logged, nothing stored) when there is
    no sender, no team holds its domain verified, or that team may not send (suspended, over quota)."""
    sender = system_sender(settings)
    if sender is None:
        return None
    name, address = sender
    domain = address.rpartition("@")[2]
    team_id = (await db.execute(text("SELECT postyard_verified_domain_team(:d)"), {"d": domain})).scalar_one()
    if team_id is None:
        logger.error("system mail not sent: no team holds %s verified (POSTYARD_SYSTEM_SENDER)", domain)
        return None
    await scope_to_team(db, team_id)
    draft = Draft(from_name=name, from_address=address, to=[to], cc=[], bcc=[], reply_to=[], subject=subject,
                  html=None, text=body, headers=[], attachments=[], tags=[{"name": SYSTEM_TAG, "value": kind}],
                  scheduled_at=None)
    email_id = uuid.uuid4()
    try:
        async with db.begin_nested():
            await services.accept(db, Principal(team_id=team_id, ip=ip), [draft], [email_id], settings)
    except ApiError as exc:
        logger.error("system mail not sent as team %s: %s", team_id, exc.detail)
        return None
    return email_id
