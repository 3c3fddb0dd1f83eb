"""A page of a team's rows, newest first, by keyset on (created_at, id): Resend's `after` and `before` cursors
over lists too long to read whole (emails, received emails)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, text

from app.db.executor import Executor

__all__ = ["newest_first_page"]


async def newest_first_page(db: Executor, table: str, columns: str, team_id: uuid.UUID, limit: int,
                            after: uuid.UUID | None, before: uuid.UUID | None) -> tuple[list[Row[Any]], bool]:
    """Up to `limit` of the team's rows of `table` (a name in the code, never input) newest first: those older
    than `after`, or the newest of those newer than `before`, or the newest; and whether more remain that way.
    An id that names no row gives an empty page."""
    parameters: dict[str, Any] = {"team_id": team_id, "limit": limit + 1}
    at_cursor = f"(SELECT created_at, id FROM {table} WHERE id = :cursor)"
    where, order = "", "DESC"
    if after is not None:
        where, parameters["cursor"] = f" AND (created_at, id) < {at_cursor}", after
    elif before is not None:
        where, order, parameters["cursor"] = f" AND (created_at, id) > {at_cursor}", "ASC", before
    rows = list((await db.execute(text(
        f"SELECT {columns} FROM {table} WHERE team_id = :team_id{where} "
        f"ORDER BY created_at {order}, id {order} LIMIT :limit"), parameters)).all())
    page = rows[:limit]
    if before is not None:
        page.reverse()
    return page, len(rows) > limit
