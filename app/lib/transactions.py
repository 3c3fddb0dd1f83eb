"""Each request's database transaction: committed before its response starts, and a failed commit
turns a success into `503 service_unavailable` (with `Retry-After`), never a 2xx for a write that
was not stored. advanced-alchemy's own "autocommit" handler logs a failed commit and sends the 2xx.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any, cast

import msgspec
from advanced_alchemy.extensions.litestar._utils import delete_aa_scope_state, get_aa_scope_state
from advanced_alchemy.extensions.litestar.plugins.init.config.common import (
    SESSION_SCOPE_KEY,
    SESSION_TERMINUS_ASGI_EVENTS,
)
from litestar.constants import HTTP_RESPONSE_BODY, HTTP_RESPONSE_START
from litestar.types import Message, Scope
from sqlalchemy.ext.asyncio import AsyncSession

from app.lib.errors import RETRY_AFTER_SECONDS, ErrorBody

__all__ = ["NOT_STORED", "commit_before_send"]

logger = logging.getLogger("postyard.transactions")
_FAILED = "postyard_commit_failed"
NOT_STORED = "The change could not be stored; try again"
"""The 503's message when a commit fails (here, and for `POST /emails`' shared commits)."""
_UNAVAILABLE = msgspec.json.encode(ErrorBody(statusCode=503, name="service_unavailable", message=NOT_STORED))
_REPLACED = {b"content-type", b"content-length", b"retry-after"}


def _unavailable(message: Message) -> None:
    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _REPLACED]
    message["status"] = 503
    message["headers"] = headers + [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(_UNAVAILABLE)).encode()),
                                    (b"retry-after", str(RETRY_AFTER_SECONDS).encode())]


async def _settle(step: Callable[[], Coroutine[Any, Any, None]], scope: Scope) -> bool:
    """Run a commit, rollback or close; a failure is logged, never raised into the response."""
    try:
        await step()
    except Exception:  # noqa: BLE001 - a dead connection fails every step; the response still goes out
        logger.warning("session %s failed", step.__name__, exc_info=True, extra={"path": scope.get("path")})
        return False
    return True


def commit_before_send(
    session_scope_key: str = SESSION_SCOPE_KEY,
) -> Callable[[Message, Scope], Coroutine[Any, Any, None]]:
    """The before-send hook: commit on 2xx, roll back otherwise, and answer 503 when the commit fails."""

    async def handler(message: Message, scope: Scope) -> None:
        state = scope.setdefault("state", {})
        if message["type"] == HTTP_RESPONSE_BODY and state.pop(_FAILED, False):
            message["body"] = _UNAVAILABLE  # type: ignore[typeddict-unknown-key]
            message["more_body"] = False  # type: ignore[typeddict-unknown-key]
            return
        session = cast("AsyncSession | None", get_aa_scope_state(scope, session_scope_key))
        if session is None:
            return
        if message["type"] == HTTP_RESPONSE_START:
            succeeded = 200 <= message["status"] < 300
            if succeeded and not await _settle(session.commit, scope):
                state[_FAILED] = True
                _unavailable(message)
            if not succeeded or state.get(_FAILED):
                await _settle(session.rollback, scope)
        if message["type"] in SESSION_TERMINUS_ASGI_EVENTS:
            await _settle(session.close, scope)
            delete_aa_scope_state(scope, session_scope_key)

    return handler
