"""Path identifiers: anything that is not a UUID names no resource (404, not a validation error)."""

from __future__ import annotations

import uuid

from app.lib.api_error import ApiError

__all__ = ["parse_id"]


def parse_id(value: str, resource: str) -> uuid.UUID:
    """The UUID in a path parameter, or 404."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(404, "not_found", f"{resource} not found") from None
