"""Operator routes admit only the session of a user with the operator role (never an API key)."""

from __future__ import annotations

from typing import Any

from litestar import Request

from app.domain.accounts.current_user import SessionUser, provide_session_user
from app.lib.api_error import ApiError
from app.lib.dependencies import DbSession

__all__ = ["provide_operator"]


async def provide_operator(request: Request[Any, Any, Any], db_session: DbSession) -> SessionUser:
    """The operator behind the session cookie (403 for anyone else), rate limited as every session user is."""
    if request.headers.get("authorization"):
        raise ApiError(403, "operator_required", "Operator routes need an operator's session, not an API key")
    user = await provide_session_user(request, db_session)
    if not user.is_operator:
        raise ApiError(403, "operator_required", "This route is for the instance's operators")
    return user
