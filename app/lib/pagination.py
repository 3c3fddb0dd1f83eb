"""Resend's cursor pagination (`limit`, and `after` or `before` an item's id) over a team's short lists."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Annotated, TypeVar

from litestar.params import QueryParameter

from app.lib.api_error import ApiError

__all__ = ["Limit", "cursor_id", "page_of"]

T = TypeVar("T")

Limit = Annotated[int, QueryParameter(ge=1, le=100, description="How many items to return (1 to 100).")]


def cursor_id(value: str | None, name: str) -> uuid.UUID | None:
    """A cursor (`after` or `before`) as the id it must be; 422 otherwise."""
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(422, "validation_error", f"{name} must be an id") from None


def page_of(items: Sequence[T], limit: int, after: str | None, before: str | None,
            id_of: Callable[[T], str] = lambda item: str(item.id)) -> tuple[list[T], bool]:  # type: ignore[attr-defined]
    """The `limit` items after (or before) the one with the given id, in the list's order, and whether more
    remain that way; none for an id that is not in the list (as /emails answers). The lists paged here (a
    team's domains, keys, endpoints, templates) are short, so they are read whole."""
    if after is not None and before is not None:
        raise ApiError(422, "validation_error", "use after or before, not both")
    after_id, before_id = cursor_id(after, "after"), cursor_id(before, "before")
    after, before = (str(after_id) if after_id else None), (str(before_id) if before_id else None)
    cursor = after if after is not None else before
    ids = [id_of(item) for item in items]
    if cursor is not None and cursor not in ids:
        return [], False
    if before is not None:
        end = ids.index(before)
        start = max(0, end - limit)
        return list(items[start:end]), start > 0
    start = ids.index(after) + 1 if after is not None else 0
    return list(items[start:start + limit]), start + limit < len(items)
