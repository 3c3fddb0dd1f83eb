"""Suspending and resuming a team: while suspended its sends are refused on every path and its mail is held."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.lib.errors import ApiError

__all__ = ["MAX_REASON_LENGTH", "resume_team", "suspend_team"]

MAX_REASON_LENGTH = 500  # teams.suspension_reason's CHECK


def _reason(reason: str) -> str:
    """The reason as shown to the team (API message and SMTP reply): one line of printable text."""
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON_LENGTH:
        raise ApiError(422, "validation_error", f"reason must be 1 to {MAX_REASON_LENGTH} characters")
    if not reason.isprintable():
        raise ApiError(422, "validation_error", "reason must be one line without control characters")
    return reason


async def suspend_team(db: AsyncSession | AsyncConnection, team_id: uuid.UUID, reason: str) -> None:
    """Suspend the team (again: with the new reason, keeping the first time); 404 if there is no such team.

    From its commit on, `POST /emails`, `/emails/batch` and SMTP submission refuse the team's mail, and the
    outbox holds its queued and scheduled emails (app/domain/emails/admission.py, outbox.py).
    """
    found = (await db.execute(text(
        "UPDATE teams SET suspended_at = coalesce(suspended_at, now()), suspension_reason = :r, updated_at = now() "
        "WHERE id = :t RETURNING id"), {"t": team_id, "r": _reason(reason)})).first()
    if found is None:
        raise ApiError(404, "not_found", "Team not found")


async def resume_team(db: AsyncSession | AsyncConnection, team_id: uuid.UUID) -> None:
    """Lift the team's suspension; its held mail goes out without any other action. 404 if no such team."""
    found = (await db.execute(text(
        "UPDATE teams SET suspended_at = NULL, suspension_reason = NULL, updated_at = now() "
        "WHERE id = :t RETURNING id"), {"t": team_id})).first()
    if found is None:
        raise ApiError(404, "not_found", "Team not found")
    # Delivered at commit: workers waiting on LISTEN wake now rather than at their next poll.
    await db.execute(text("SELECT pg_notify('postyard_outbox', '')"))
