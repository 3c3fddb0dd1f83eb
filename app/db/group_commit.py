"""Group commit: the work of concurrent callers in one process shares a transaction and its commit.

A caller hands a job over and waits for the commit that holds it, so its answer still follows its own
row's commit. While one group's transaction runs, the next jobs queue; the next group takes them all, so
no job waits on a timer. A failed commit fails every job of the group (nothing is stored), and so does an
unavailable database.

A group is first stored without savepoints. When a job fails (a refusal, a value the database refuses, or
any other error of its own), the transaction is rolled back and the group stored again with each job under
a savepoint of its own, so every job gets the answer it would have had alone, in the group's order. Only
an unavailable database, a deadlock or serialization failure, or a failed commit fails the whole group.

A caller that goes away before its group starts is left out of it. One that goes away while its group
is stored may still have its work committed: the window an SMTP client has between sending a message
and reading its reply (RFC 1047), here as long as the group's transaction.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy.exc import DBAPIError

from app.lib.api_error import database_unavailable

__all__ = ["MAX_GROUP", "GroupCommit", "Job", "NotStored"]

logger = logging.getLogger("postyard.group_commit")

MAX_GROUP = 64
"""Jobs stored per transaction at most; more wait for the next one."""


class NotStored(Exception):
    """The group's commit failed or the database is unavailable: nothing of the job was stored."""


class _Nestable(Protocol):
    def begin_nested(self) -> Any: ...


C = TypeVar("C", bound=_Nestable)
T = TypeVar("T")
R = TypeVar("R")


@dataclass(eq=False)
class Job(Generic[T, R]):
    """What one caller handed over, and the future its answer arrives on."""

    work: T
    answer: asyncio.Future[R] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommit(Generic[C, T, R]):
    """Stores the jobs of concurrent callers, a group per transaction, one transaction at a time.

    - `transaction()` opens a transaction (committed on a clean exit) on a connection or session;
    - `alone(tx, job)` stores one job (under a savepoint the group commit sets when a group is stored again);
    - `together(tx, jobs)` stores a whole group, returning each job's result in order (by default, `alone`
      on each job in turn);
    - `sort_key(work)` orders a group, so that every process takes its locks in the same order;
    - `unavailable()` is what every job of a group gets when its commit fails.
    """

    def __init__(self, transaction: Callable[[], AbstractAsyncContextManager[C]], alone: Callable[[C, T], Awaitable[R]],
                 together: Callable[[C, list[T]], Awaitable[list[R]]] | None = None,
                 unavailable: Callable[[], Exception] = NotStored, sort_key: Callable[[T], Any] | None = None) -> None:
        self._transaction, self._alone, self._together = transaction, alone, together or self._each_in_turn
        self._unavailable, self._sort_key = unavailable, sort_key
        self._waiting: list[Job[T, R]] = []
        self._storing: asyncio.Task[None] | None = None

    async def submit(self, work: T) -> R:
        """Store `work`; returns its result once committed, raises what storing it raised."""
        job: Job[T, R] = Job(work)
        self._waiting.append(job)
        if self._storing is None or self._storing.done():
            # In a context of its own: its log lines belong to no one caller.
            self._storing = asyncio.create_task(self._store_waiting(), context=contextvars.Context())
        return await job.answer

    async def _store_waiting(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            group = [j for j in group if not j.answer.done()]  # a waiting caller cancelled meanwhile
            if self._sort_key is not None:
                group.sort(key=lambda job: self._sort_key(job.work))  # type: ignore[misc]
            try:
                await self._store(group)
            except Exception:
                logger.exception("storing a group of %d jobs failed", len(group))
            finally:  # whatever escaped, no job of the group waits forever
                for job in group:
                    _answer(job, self._unavailable())

    async def _store(self, group: list[Job[T, R]]) -> None:
        outcomes = await self._transaction_of(group, isolated=False)
        if outcomes is None:  # one of them failed: again, each under a savepoint of its own
            outcomes = await self._transaction_of(group, isolated=True)
        for job, outcome in zip(group, outcomes or [], strict=True):
            _answer(job, outcome)

    async def _transaction_of(self, group: list[Job[T, R]], isolated: bool) -> list[Any] | None:
        """Store the group in one transaction: each job's result or error, or None to try again isolated."""
        outcomes: list[Any] = []
        committing = False
        try:
            async with self._transaction() as tx:
                if isolated:
                    outcomes = [await self._alone_under_savepoint(tx, job.work) for job in group]
                else:
                    outcomes = await self._together(tx, [job.work for job in group])
                committing = True
        except Exception as error:  # noqa: BLE001 - each job is answered with why it was not stored
            if committing:
                logger.warning("commit of a group of %d jobs failed", len(group), exc_info=True)
            elif not _group_failure(error):
                return None if len(group) > 1 and not isolated else [error] * len(group)
            return [self._unavailable() for _ in group]
        return outcomes

    async def _each_in_turn(self, tx: C, works: list[T]) -> list[R]:
        return [await self._alone(tx, work) for work in works]

    async def _alone_under_savepoint(self, tx: C, work: T) -> R | Exception:
        """The job's result, or its own error; what fails the whole transaction is raised."""
        try:
            async with tx.begin_nested():
                return await self._alone(tx, work)
        except Exception as error:  # noqa: BLE001 - the job's own answer, its savepoint rolled back
            if _group_failure(error):
                raise
            return error


def _group_failure(error: Exception) -> bool:
    """Whether `error` fails the transaction itself rather than one job: the same work may succeed later."""
    return database_unavailable(error) or _transient(error)


def _transient(error: Exception) -> bool:
    """A deadlock or serialization failure: the same work may succeed when tried again."""
    return isinstance(error, DBAPIError) and (getattr(error.orig, "sqlstate", None) or "").startswith("40")


def _answer(job: Job[Any, Any], outcome: object) -> None:
    if job.answer.done():  # answered already, or its caller was cancelled
        return
    if isinstance(outcome, Exception):
        job.answer.set_exception(outcome)
    else:
        job.answer.set_result(outcome)
