"""Group commit for `POST /emails` (app/db/group_commit.py): concurrent requests share a transaction.

Within a group, the emails of one caller (team, key and mode) are accepted together: one admission
check, one domain lookup, one insert. Teams are taken in the order of their ids, so two API processes'
groups lock the teams' quota counters in the same order and never deadlock with each other. A refused
request (a 4xx, a value the database refuses, any error of its own) gets its own error and the rest of
its group is stored; a quota that admits some of a key's requests admits the first ones. A failed commit
answers 503 with Retry-After to the whole group.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.group_commit import GroupCommit
from app.db.tenancy import scope_to_team
from app.domain.emails.services import accept
from app.domain.emails.validation import Draft
from app.lib.api_error import ApiError
from app.lib.auth import Principal
from app.lib.errors import RETRY_AFTER_SECONDS
from app.lib.transactions import NOT_STORED

__all__ = ["AcceptGroups"]


@dataclass(frozen=True, eq=False)
class _Request:
    principal: Principal
    drafts: Sequence[Draft]
    ids: Sequence[uuid.UUID]

    @property
    def caller(self) -> tuple[str, ...]:
        """Team first, so that callers sort by team."""
        p = self.principal
        return (str(p.team_id), str(p.api_key_id), str(p.user_id), p.mode, str(p.domain_id))


class AcceptGroups:
    """Stores the emails of concurrent requests, a group per transaction, one transaction at a time."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings
        self._groups: GroupCommit[AsyncSession, _Request, None] = GroupCommit(
            self._transaction, self._accept_alone, self._accept_together, unavailable=_unavailable,
            sort_key=lambda request: request.caller)

    async def accept(self, principal: Principal, drafts: Sequence[Draft], ids: Sequence[uuid.UUID]) -> None:
        """Store the drafts as emails; returns once they are committed, raises what storing them raised."""
        await self._groups.submit(_Request(principal, drafts, ids))

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as db, db.begin():
            yield db

    async def _accept_together(self, db: AsyncSession, requests: list[_Request]) -> list[None]:
        """Each caller's requests in one go (they come sorted by caller)."""
        for _, same_caller in itertools.groupby(requests, key=lambda request: request.caller):
            mine = list(same_caller)
            await self._accept_alone(db, _Request(mine[0].principal, [d for r in mine for d in r.drafts],
                                                  [i for r in mine for i in r.ids]))
        return [None] * len(requests)

    async def _accept_alone(self, db: AsyncSession, request: _Request) -> None:
        await scope_to_team(db, request.principal.team_id)
        await accept(db, request.principal, request.drafts, request.ids, self._settings)


def _unavailable() -> ApiError:
    return ApiError(503, "service_unavailable", NOT_STORED, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
