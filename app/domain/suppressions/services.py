"""The suppression list: addresses a team never sends to again (hard bounces, complaints, unsubscribes, manual)."""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from sqlalchemy import text

from app.domain.emails.validation import check_address
from app.domain.suppressions.schemas import SuppressionOut
from app.lib.errors import ApiError
from app.lib.timefmt import iso

__all__ = ["ORIGINS", "add", "find", "page", "remove", "to_out"]

ORIGINS = {"hard_bounce": "bounce", "complaint": "complaint", "unsubscribe": "manual", "manual": "manual"}


class _Executor(Protocol):
    async def execute(self, statement: Any, parameters: Any = None) -> Any: ...


def to_out(row: Any) -> SuppressionOut:
    """The API shape of a suppression row."""
    return SuppressionOut(id=str(row.id), email=row.email, origin=ORIGINS[row.reason], reason=row.reason,
                          source_id=str(row.source_id) if row.source_id else None, created_at=iso(row.created_at) or "")


async def add(db: _Executor, team_id: uuid.UUID, emails: list[str], reason: str,
              source_id: uuid.UUID | None = None, validate: bool = True) -> list[uuid.UUID]:
    """Suppress the addresses (lowercased); an address already listed keeps its first reason. Returns ids."""
    addresses = [(check_address(e, "email") if validate else e).lower() for e in emails]
    ids = []
    for address in dict.fromkeys(addresses):
        row = (await db.execute(text(
            "INSERT INTO suppressions (id, team_id, email, reason, source_id) VALUES (:id, :t, :e, :r, :s) "
            "ON CONFLICT (team_id, email) DO UPDATE SET email = EXCLUDED.email RETURNING id"),
            {"id": uuid.uuid4(), "t": team_id, "e": address, "r": reason, "s": source_id})).one()
        ids.append(row.id)
    return ids


async def find(db: _Executor, team_id: uuid.UUID, key: str) -> Any:
    """A suppression by id or by address, or 404."""
    try:
        where, value = "id = :v", uuid.UUID(key)
    except ValueError:
        where, value = "email = :v", key.strip().lower()  # type: ignore[assignment]
    row = (await db.execute(text(f"SELECT * FROM suppressions WHERE team_id = :t AND {where}"),
                            {"t": team_id, "v": value})).first()
    if row is None:
        raise ApiError(404, "not_found", "Suppression not found")
    return row


async def remove(db: _Executor, team_id: uuid.UUID, keys: list[str]) -> list[uuid.UUID]:
    """Delete suppressions by id or address; unknown ones are skipped."""
    removed = []
    for key in keys:
        try:
            row = await find(db, team_id, key)
        except ApiError:
            continue
        await db.execute(text("DELETE FROM suppressions WHERE id = :id"), {"id": row.id})
        removed.append(row.id)
    return removed


async def page(db: _Executor, team_id: uuid.UUID, origin: str | None, limit: int,
               after: uuid.UUID | None) -> tuple[list[Any], bool]:
    """A page of suppressions, newest first, optionally of one origin."""
    reasons = [r for r, o in ORIGINS.items() if origin is None or o == origin]
    params: dict[str, Any] = {"t": team_id, "r": reasons, "n": limit + 1}
    where = ""
    if after is not None:
        where, params["c"] = " AND (created_at, id) < (SELECT created_at, id FROM suppressions WHERE id = :c)", after
    rows = list((await db.execute(text(
        f"SELECT * FROM suppressions WHERE team_id = :t AND reason = ANY(:r){where} "
        "ORDER BY created_at DESC, id DESC LIMIT :n"), params)).all())
    return rows[:limit], len(rows) > limit
