"""Group commit for `POST /emails`: the emails of concurrent requests in one process share a transaction.

A request hands its email over and waits for the commit that holds it, so its answer still follows its own
row's commit, and a failed commit fails every request of the group (503, nothing stored). While one group's
transaction runs, the next requests queue; the next group takes them all, so no request waits on a timer.

Within a group, the emails of one caller (team, key and mode) are accepted together: one admission check,
one domain lookup, one insert. Teams are taken in the order of their ids, so two processes' groups lock the
teams' quota counters in the same order and never deadlock. When a request is refused (a 4xx, or a value
the database refuses), the group's transaction is rolled back and the group stored again with each request
under a savepoint of its own, so every request gets the answer it would have had alone (a quota that admits
some of a key's requests admits the first ones). An unavailable database fails the group at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.tenancy import scope_to_team
from app.domain.emails.services import accept
from app.domain.emails.validation import Draft
from app.lib.api_error import ApiError, database_unavailable
from app.lib.auth import Principal
from app.lib.errors import RETRY_AFTER_SECONDS
from app.lib.transactions import NOT_STORED

__all__ = ["AcceptGroups"]

logger = logging.getLogger("postyard.accept_groups")

MAX_GROUP = 64
"""Requests stored per transaction at most; more wait for the next one."""


@dataclass(eq=False)
class _Request:
    principal: Principal
    drafts: Sequence[Draft]
    ids: Sequence[uuid.UUID]
    answer: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

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
        self._waiting: list[_Request] = []
        self._storing: asyncio.Task[None] | None = None

    async def accept(self, principal: Principal, drafts: Sequence[Draft], ids: Sequence[uuid.UUID]) -> None:
        """Store the drafts as emails; returns once they are committed, raises what storing them raised."""
        request = _Request(principal, drafts, ids)
        self._waiting.append(request)
        if self._storing is None or self._storing.done():
            # In a context of its own: its log lines belong to no one request.
            self._storing = asyncio.create_task(self._store_waiting(), context=contextvars.Context())
        await request.answer

    async def _store_waiting(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            group = [r for r in group if not r.answer.done()]  # a waiting handler cancelled meanwhile
            try:
                await self._store(group)
            except Exception:
                logger.exception("storing a group of %d requests failed", len(group))
            finally:  # whatever escaped, no request of the group waits forever
                for request in group:
                    _answer(request, _unavailable())

    async def _store(self, group: list[_Request]) -> None:
        answers = await self._transaction(group, isolated=False)
        if answers is None:  # one of them was refused: again, each under a savepoint of its own
            answers = await self._transaction(group, isolated=True)
        for request in group:
            _answer(request, answers.get(request))

    async def _transaction(self, group: list[_Request], isolated: bool) -> dict[_Request, Exception] | None:
        """Store the group in one transaction: the refused requests and why, or None to try again isolated."""
        refused: dict[_Request, Exception] = {}
        committing = False
        async with self._sessions() as db:
            try:
                async with db.begin():
                    for requests in _by_caller(group):
                        await scope_to_team(db, requests[0].principal.team_id)
                        if isolated:
                            refused.update(await self._accept_each(db, requests))
                        else:
                            await self._accept(db, requests)
                    committing = True
            except Exception as error:  # noqa: BLE001 - each request is answered with why it was not stored
                if not committing and not isolated and len(group) > 1 and _refusal(error):
                    return None
                if committing:  # as for a request's own transaction (app/lib/transactions.py)
                    logger.warning("commit of %d emails failed", len(group) - len(refused), exc_info=True)
                unavailable = committing or database_unavailable(error)
                return {request: refused.get(request) or (_unavailable() if unavailable else error)
                        for request in group}
        return refused

    async def _accept(self, db: AsyncSession, requests: list[_Request]) -> None:
        """One caller's requests in one go: one admission check, one domain lookup, one insert."""
        await accept(db, requests[0].principal, [d for r in requests for d in r.drafts],
                     [i for r in requests for i in r.ids], self._settings)

    async def _accept_each(self, db: AsyncSession, requests: list[_Request]) -> dict[_Request, Exception]:
        """Each request under its own savepoint; the refused ones and why. Any other error ends the group."""
        refused: dict[_Request, Exception] = {}
        for request in requests:
            try:
                async with db.begin_nested():
                    await accept(db, request.principal, request.drafts, request.ids, self._settings)
            except Exception as error:
                if not _refusal(error):
                    raise
                refused[request] = error
        return refused


def _refusal(error: Exception) -> bool:
    """Whether `error` refuses this request (a 4xx, a value the database refuses), not the whole group."""
    if isinstance(error, ApiError):
        return True
    return isinstance(error, DBAPIError) and not database_unavailable(error) and (
        getattr(error.orig, "sqlstate", None) or "").startswith(("22", "23"))


def _by_caller(group: list[_Request]) -> list[list[_Request]]:
    """The group's requests by caller, teams in the order of their ids, each caller's in the order they came."""
    callers: dict[tuple[str, ...], list[_Request]] = {}
    for request in group:
        callers.setdefault(request.caller, []).append(request)
    return [callers[caller] for caller in sorted(callers)]


def _unavailable() -> ApiError:
    return ApiError(503, "service_unavailable", NOT_STORED, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _answer(request: _Request, error: Exception | None) -> None:
    if request.answer.done():  # answered already, or its handler was cancelled
        return
    if error is None:
        request.answer.set_result(None)
    else:
        request.answer.set_exception(error)
