"""A console form's change: made in a savepoint, then POST-redirect-GET with a message, or the form's page again
with the API's refusal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from litestar import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.console.auth import ConsoleUser
from app.console.render import redirect
from app.lib.api_error import ApiError

__all__ = ["Done", "Refused", "run_change"]

Refused = Callable[[ApiError], Awaitable[Response[Any]]]
"""The form's page again, with the API's message for the refusal under its status."""


class Done(NamedTuple):
    """Where a change sends the browser, and the message the next page shows."""

    to: str
    flash: str


async def run_change(request: Request[Any, Any, Any], user: ConsoleUser, db_session: AsyncSession,
                     change: Callable[[], Awaitable[Done]], refused: Refused) -> Response[Any]:
    """Make `change` and redirect where it says; when it raises an ApiError, undo only what it wrote and answer
    `refused(error)`."""
    try:
        async with db_session.begin_nested():
            done = await change()
    except ApiError as exc:
        return await refused(exc)
    return await redirect(request, user, db_session, done.to, flash=done.flash)
