"""The suppression list: addresses a team never sends to again (hard bounces, complaints, unsubscribes, manual)."""

from __future__ import annotations

import uuid
from typing import Any

from app.db.executor import Executor
from app.domain.emails.validation import check_address
from app.domain.suppressions import repository
from app.domain.suppressions.schemas import SuppressionOut
from app.lib.api_error import ApiError
from app.lib.response_body import unless_none
from app.lib.timefmt import iso

__all__ = ["ORIGINS", "add", "find", "page", "remove", "to_out"]

ORIGINS = {"hard_bounce": "bounce", "complaint": "complaint", "unsubscribe": "manual", "manual": "manual"}


def to_out(row: Any) -> SuppressionOut:
    """The API shape of a suppression row."""
    return SuppressionOut(id=str(row.id), email=row.email, origin=ORIGINS[row.reason], reason=row.reason,
                          source_id=unless_none(str(row.source_id) if row.source_id else None),
                          created_at=iso(row.created_at) or "")


async def add(db: Executor, team_id: uuid.UUID, emails: list[str], reason: str,
              source_id: uuid.UUID | None = None, validate: bool = True) -> list[uuid.UUID]:
    """Suppress the addresses (lowercased); an address already listed keeps its first reason. Returns ids."""
    addresses = list(dict.fromkeys((check_address(e, "email") if validate else e).lower() for e in emails))
    ids = await repository.insert_suppressions(
        db, [repository.NewSuppression(team_id, address, reason, source_id) for address in addresses])
    return [ids[(team_id, address)] for address in addresses]


async def find(db: Executor, team_id: uuid.UUID, key: str) -> Any:
    """A suppression by id or by address, or 404."""
    try:
        suppression_id = uuid.UUID(key)
    except ValueError:
        row = await repository.find_suppression(db, team_id, email=key.strip().lower())
    else:
        row = await repository.find_suppression(db, team_id, suppression_id=suppression_id)
    if row is None:
        raise ApiError(404, "not_found", "Suppression not found")
    return row


async def remove(db: Executor, team_id: uuid.UUID, keys: list[str]) -> list[uuid.UUID]:
    """Delete suppressions by id or address; unknown ones are skipped."""
    removed = []
    for key in keys:
        try:
            row = await find(db, team_id, key)
        except ApiError:
            continue
        await repository.delete_suppression(db, row.id)
        removed.append(row.id)
    return removed


async def page(db: Executor, team_id: uuid.UUID, origin: str | None, limit: int, after: uuid.UUID | None,
               reason: str | None = None, search: str | None = None) -> tuple[list[Any], bool]:
    """A page of suppressions, newest first, optionally of one origin or reason, or with `search` in the
    address."""
    reasons = [r for r, o in ORIGINS.items() if (origin is None or o == origin) and reason in (None, r)]
    rows = await repository.suppression_page(db, team_id, reasons, limit + 1, after,
                                             search.strip().lower() if search else None)
    return rows[:limit], len(rows) > limit
