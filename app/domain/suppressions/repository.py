"""The suppression list's SQL, with named parameters (the table has no ORM model)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, text

from app.db.executor import Executor

__all__ = ["NewSuppression", "delete_suppression", "find_suppression", "insert_suppressions", "suppressed_among",
           "suppression_page"]


_INSERT = text("""
INSERT INTO suppressions (id, team_id, email, reason, source_id)
SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:team_ids AS uuid[]), CAST(:emails AS text[]),
                     CAST(:reasons AS text[]), CAST(:source_ids AS uuid[]))
ON CONFLICT (team_id, email) DO UPDATE SET email = EXCLUDED.email RETURNING id, team_id, email""")
_BY_ID = text("SELECT * FROM suppressions WHERE team_id = :team_id AND id = :suppression_id")
_BY_EMAIL = text("SELECT * FROM suppressions WHERE team_id = :team_id AND email = :email")
_DELETE = text("DELETE FROM suppressions WHERE id = :suppression_id")
_SUPPRESSED_AMONG = text("SELECT email, reason FROM suppressions WHERE team_id = :team_id AND email = ANY(:addresses)")


@dataclass(frozen=True)
class NewSuppression:
    """An address (lowercase) to suppress for a team, why, and the email that caused it."""

    team_id: uuid.UUID
    email: str
    reason: str
    source_id: uuid.UUID | None = None


async def insert_suppressions(db: Executor,
                              entries: Sequence[NewSuppression]) -> dict[tuple[uuid.UUID, str], uuid.UUID]:
    """Suppress the addresses in one statement; an address already listed keeps its first reason. Each
    (team, address)'s entry id; of the same pair given twice, the first counts."""
    unique = list({(e.team_id, e.email): e for e in reversed(entries)}.values())
    if not unique:
        return {}
    rows = await db.execute(_INSERT, {
        "ids": [uuid.uuid4() for _ in unique], "team_ids": [e.team_id for e in unique],
        "emails": [e.email for e in unique], "reasons": [e.reason for e in unique],
        "source_ids": [e.source_id for e in unique]})
    return {(r.team_id, r.email): r.id for r in rows}


async def find_suppression(db: Executor, team_id: uuid.UUID, *, suppression_id: uuid.UUID | None = None,
                           email: str | None = None) -> Row[Any] | None:
    """The team's entry with this id, or else for this (lowercase) address."""
    if suppression_id is not None:
        return (await db.execute(_BY_ID, {"team_id": team_id, "suppression_id": suppression_id})).first()
    return (await db.execute(_BY_EMAIL, {"team_id": team_id, "email": email})).first()


async def delete_suppression(db: Executor, suppression_id: uuid.UUID) -> None:
    """Remove one entry."""
    await db.execute(_DELETE, {"suppression_id": suppression_id})


async def suppressed_among(db: Executor, team_id: uuid.UUID, addresses: Sequence[str]) -> dict[str, str]:
    """Which of the (lowercase) addresses the team suppresses, with each entry's reason."""
    rows = await db.execute(_SUPPRESSED_AMONG, {"team_id": team_id, "addresses": list(addresses)})
    return {r.email: r.reason for r in rows}


async def suppression_page(db: Executor, team_id: uuid.UUID, reasons: Sequence[str], limit: int,
                           after: uuid.UUID | None, search: str | None = None) -> list[Row[Any]]:
    """Up to `limit` of the team's entries with one of the reasons (and `search` in the address), newest first,
    older than the `after` entry."""
    parameters: dict[str, Any] = {"team_id": team_id, "reasons": list(reasons), "limit": limit}
    where = ""
    if search:
        where += " AND strpos(email, :search) > 0"
        parameters["search"] = search
    if after is not None:
        where += " AND (created_at, id) < (SELECT created_at, id FROM suppressions WHERE id = :cursor)"
        parameters["cursor"] = after
    return list((await db.execute(text(
        f"SELECT * FROM suppressions WHERE team_id = :team_id AND reason = ANY(:reasons){where} "
        "ORDER BY created_at DESC, id DESC LIMIT :limit"), parameters)).all())
